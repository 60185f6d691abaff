"""`PendoSyncComponent` as a `dg` project loads it: the YAML of the README, inline syncs and a
syncs file, translation, key collisions and missing variables (dagster.components.testing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox
from dagster.components.testing.test_cases import TestTranslation

from pendo_assets import PendoSyncComponent
from pendo_assets.sync.spec import SyncConfigError

TYPE = "pendo_assets.PendoSyncComponent"
VISITORS = {
    "name": "visitors",
    "object_type": "visitor_metadata",
    "source": {"table": "pendo_visitors", "partition_column": "updated_at"},
    "mapping": {"id": "visitorId", "plan": "plan"},
}
EVENTS = {
    "name": "feature_events",
    "object_type": "track_events",
    "source": {"table": "feature_events", "partition_column": "occurred_at"},
    "mapping": {"user_id": "visitorId", "event_name": "event", "occurred_at": "timestamp"},
}
MADE_UP_KEY = "made-up-integration-key-7f3a"
MADE_UP_SECRET = "made-up-track-secret-91c2"


@pytest.fixture
def pendo_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PENDO_INTEGRATION_KEY", MADE_UP_KEY)
    monkeypatch.setenv("PENDO_TRACK_EVENT_SECRET", MADE_UP_SECRET)
    monkeypatch.setenv("PENDO_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))


@contextmanager
def loaded(
    attributes: dict[str, Any], files: dict[str, Any] | None = None
) -> Iterator[tuple[PendoSyncComponent, dg.Definitions]]:
    """The component of a defs.yaml with `attributes` (and YAML `files` beside it), loaded."""
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=PendoSyncComponent,
            defs_yaml_contents={"type": TYPE, "attributes": attributes},
        )
        for name, content in (files or {}).items():
            (path / name).write_text(yaml.safe_dump(content))
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, PendoSyncComponent)
            yield component, defs


def load_error(attributes: dict[str, Any], files: dict[str, Any] | None = None) -> str:
    """The message of why the component failed to load, with the errors that caused it
    (Dagster wraps them in its own)."""
    with pytest.raises(Exception) as raised, loaded(attributes, files):
        pass
    chain = [raised.value, *_causes(raised.value)]
    return "\n".join(str(error) for error in chain)


def _causes(error: BaseException) -> Iterator[BaseException]:
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
        yield error


def spec_of(defs: dg.Definitions, key: str | dg.AssetKey) -> dg.AssetSpec:
    """The spec of one asset as built, by key (`pendo/visitors`)."""
    asset_key = dg.AssetKey.from_user_string(key) if isinstance(key, str) else key
    return defs.resolve_assets_def(asset_key).specs_by_key[asset_key]


def asset_keys(defs: dg.Definitions) -> set[str]:
    return {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}


@pytest.mark.usefixtures("pendo_env")
def test_the_readme_yaml_loads_a_sync_file_beside_it() -> None:
    attributes = {
        "region": "eu",
        "base_url": "{{ env('PENDO_BASE_URL', '') }}",
        "integration_key_env": "PENDO_INTEGRATION_KEY",
        "track_event_secret_env": "PENDO_TRACK_EVENT_SECRET",
        "warehouse_url_env": "PENDO_WAREHOUSE_URL",
        "state_url_env": "PENDO_STATE_URL",
        "start_date": "2026-11-01",
        "syncs_file": "syncs.yaml",
        "syncs": [],
        "translation": {"group_name": "pendo_{{ sync.object_type }}"},
    }
    files = {"syncs.yaml": {"start_date": "2026-01-01", "syncs": [VISITORS, EVENTS]}}
    with loaded(attributes, files) as (_, defs):
        assert asset_keys(defs) == {
            "warehouse/visitors",
            "pendo/visitors",
            "warehouse/feature_events",
            "pendo/feature_events",
        }
        pendo = spec_of(defs, "pendo/visitors")
        assert pendo.group_name == "pendo_visitor_metadata"
        assert spec_of(defs, "warehouse/feature_events").group_name == "pendo_track_events"
        # start_date in defs.yaml wins over the syncs file's
        assert pendo.partitions_def.get_first_partition_key() == "2026-11-01"  # type: ignore[union-attr]
        resource = defs.resources["pendo"]
        assert resource.region == "eu" and resource.base_url is None
        jobs = {job.name for job in defs.jobs or []}
        assert jobs == {"visitors_sync", "feature_events_sync"}
        sensors = {sensor.name for sensor in defs.sensors or []}
        assert len(sensors) == 4 and {s.name for s in defs.schedules or []} == {
            "visitors_sync_daily",
            "feature_events_sync_daily",
        }


@pytest.mark.usefixtures("pendo_env")
def test_credentials_are_bound_by_name_and_never_read_at_load() -> None:
    with loaded({"syncs": [VISITORS, EVENTS], "start_date": "2026-11-01"}) as (_, defs):
        pendo = defs.resources["pendo"]
        assert pendo.integration_key == dg.EnvVar("PENDO_INTEGRATION_KEY")
        assert pendo.track_event_secret == dg.EnvVar("PENDO_TRACK_EVENT_SECRET")
        assert defs.resources["warehouse"].url == dg.EnvVar("PENDO_WAREHOUSE_URL")
        shown = repr(defs.resources) + repr(defs.resolve_all_asset_specs())
        assert MADE_UP_KEY not in shown and MADE_UP_SECRET not in shown


@pytest.mark.usefixtures("pendo_env")
def test_inline_syncs_and_a_syncs_file_add_up() -> None:
    files = {"syncs.yaml": {"start_date": "2026-11-01", "syncs": [VISITORS]}}
    with loaded({"syncs_file": "syncs.yaml", "syncs": [EVENTS]}, files) as (_, defs):
        assert asset_keys(defs) == {
            "warehouse/visitors",
            "pendo/visitors",
            "warehouse/feature_events",
            "pendo/feature_events",
        }


@pytest.mark.usefixtures("pendo_env")
def test_a_sync_declared_twice_is_refused_naming_it() -> None:
    files = {"syncs.yaml": {"start_date": "2026-11-01", "syncs": [VISITORS]}}
    error = load_error({"syncs_file": "syncs.yaml", "syncs": [VISITORS]}, files)
    assert "syncs.yaml: sync 'visitors': duplicate sync name" in error


@pytest.mark.usefixtures("pendo_env")
def test_no_syncs_at_all_is_refused() -> None:
    assert "no syncs: give `syncs_file` or `syncs`" in load_error({})


@pytest.mark.usefixtures("pendo_env")
def test_a_bad_sync_names_the_file_it_came_from() -> None:
    broken = {**VISITORS, "mapping": {"id": "visitorId", "plan": "no such.field.x"}}
    files = {"syncs.yaml": {"start_date": "2026-11-01", "syncs": [broken]}}
    error = load_error({"syncs_file": "syncs.yaml"}, files)
    assert "syncs.yaml: sync 'visitors'" in error and "no such.field.x" in error


@pytest.mark.usefixtures("pendo_env")
def test_translation_can_prefix_keys_and_set_tags_owners_and_automation() -> None:
    translation = {
        "key_prefix": "acme",
        "tags": {"team": "growth"},
        "owners": ["team:growth"],
        "description": "{{ asset }} side of {{ sync.name }}",
        "automation_condition": "{{ dg.AutomationCondition.on_cron('0 3 * * *') }}",
    }
    with loaded({"syncs": [VISITORS], "start_date": "2026-11-01", "translation": translation}) as (
        _,
        defs,
    ):
        assert asset_keys(defs) == {"acme/warehouse/visitors", "acme/pendo/visitors"}
        spec = spec_of(defs, "acme/pendo/visitors")
        assert spec.tags["team"] == "growth" and spec.owners == ["team:growth"]
        assert spec.description == "pendo side of visitors"
        assert spec.automation_condition is not None
        # the push still depends on its (translated) warehouse asset, and the job selects both
        assert {dep.asset_key for dep in spec.deps} == {
            dg.AssetKey(["acme", "warehouse", "visitors"])
        }
        job = defs.resolve_job_def("visitors_sync")
        assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {
            "acme/warehouse/visitors",
            "acme/pendo/visitors",
        }


@pytest.mark.usefixtures("pendo_env")
def test_automation_can_be_declared_for_some_syncs_only() -> None:
    on_cron = "dg.AutomationCondition.on_cron('0 3 * * *')"
    translation = {
        "automation_condition": f"{{{{ {on_cron} if sync.object_type == 'track_events' "
        "else None }}"
    }
    with loaded(
        {"syncs": [VISITORS, EVENTS], "start_date": "2026-11-01", "translation": translation}
    ) as (_, defs):
        assert spec_of(defs, "pendo/feature_events").automation_condition is not None
        assert spec_of(defs, "warehouse/feature_events").automation_condition is not None
        assert spec_of(defs, "pendo/visitors").automation_condition is None


@pytest.mark.usefixtures("pendo_env")
def test_two_syncs_mapped_to_one_key_fail_loading_clearly() -> None:
    renamed = {**EVENTS, "name": "visitors_events"}
    translation = {"key": "pendo/{{ asset }}"}
    error = load_error(
        {"syncs": [VISITORS, renamed], "start_date": "2026-11-01", "translation": translation}
    )
    assert "syncs 'visitors' and 'visitors_events' both map to asset key 'pendo/warehouse'" in error


@pytest.mark.usefixtures("pendo_env")
def test_a_translation_may_not_change_the_partitions() -> None:
    translation = {"partitions_def": {"type": "static", "partition_keys": ["a"]}}
    error = load_error(
        {"syncs": [VISITORS], "start_date": "2026-11-01", "translation": translation}
    )
    assert "sync 'visitors': a translation may not change the partitions" in error


def test_a_missing_variable_is_named_and_no_value_is_printed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PENDO_INTEGRATION_KEY", MADE_UP_KEY)
    monkeypatch.delenv("PENDO_TRACK_EVENT_SECRET", raising=False)
    monkeypatch.setenv("ACME_WAREHOUSE", f"sqlite:///{tmp_path / 'w.db'}")
    attributes = {
        "syncs": [VISITORS, EVENTS],
        "start_date": "2026-11-01",
        "warehouse_url_env": "ACME_WAREHOUSE",
    }
    message = load_error(attributes)
    assert "PENDO_TRACK_EVENT_SECRET (sync 'feature_events' (track_events) needs it)" in message
    assert "ACME_WAREHOUSE" not in message and "PENDO_INTEGRATION_KEY" not in message
    assert MADE_UP_KEY not in message


class TestPendoSyncTranslation(TestTranslation):
    """Dagster's own translation cases, applied to both assets of a sync."""

    def test_translation(
        self,
        attributes: dict[str, Any],
        assertion: Callable[[dg.AssetSpec], bool],
        key_modifier: Callable[[dg.AssetKey], dg.AssetKey] | None,
        pendo_env: None,
    ) -> None:
        component = {"syncs": [VISITORS], "start_date": "2026-11-01", "translation": attributes}
        if "partitions_def" in attributes:  # refused: see the test above
            assert "may not change the partitions" in load_error(component)
            return
        with loaded(component) as (_, defs):
            for default in (
                dg.AssetKey(["warehouse", "visitors"]),
                dg.AssetKey(["pendo", "visitors"]),
            ):
                key = key_modifier(default) if key_modifier else default
                assert assertion(spec_of(defs, key))


def test_load_syncs_reads_the_file_relative_to_the_defs_folder(tmp_path: Path) -> None:
    (tmp_path / "syncs.yaml").write_text(
        yaml.safe_dump({"start_date": "2026-11-01", "syncs": [VISITORS]})
    )
    component = PendoSyncComponent(syncs_file="syncs.yaml", syncs=[EVENTS])
    syncs = component.load_syncs(tmp_path)
    assert [s.name for s in syncs.syncs] == ["visitors", "feature_events"]
    with pytest.raises(SyncConfigError, match="cannot read the syncs file"):
        PendoSyncComponent(syncs_file="missing.yaml").load_syncs(tmp_path)
