"""The code location ``pendo_assets.definitions`` (configured by environment variables) and the
factory it is built with, ``build_pendo_definitions``."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg
import pytest

from pendo_assets.defs.database_resources import SyncStateResource, WarehouseResource
from pendo_assets.defs.factory import build_pendo_definitions
from pendo_assets.defs.resources import PendoResource
from pendo_assets.sync.spec import SourceSpec, SyncConfigError, SyncSpec, load_syncs_file

REPO = Path(__file__).resolve().parents[1]
DEMO_SYNCS = REPO / "pendo_assets" / "demo" / "demo_syncs.yaml"
MODULE = "pendo_assets.definitions"
DEMO_NAMES = ("account_metadata", "track_events", "visitor_metadata")
VARIABLES = (
    "PENDO_REGION",
    "PENDO_INTEGRATION_KEY",
    "PENDO_TRACK_EVENT_SECRET",
    "PENDO_BASE_URL",
    "PENDO_WAREHOUSE_URL",
    "PENDO_STATE_URL",
    "PENDO_SYNCS_FILE",
    "PENDO_MAX_REQUESTS_PER_SECOND",
    "PENDO_MAX_IN_FLIGHT",
)
BROKEN_SYNCS = """\
start_date: "2026-11-01"
syncs:
  - name: fine
    object_type: account_metadata
    source: {table: accounts, partition_column: updated_at}
    mapping: {id: accountId, name: name}
  - name: broken
    object_type: visitor_metadata
    source: {table: visitors, partition_column: updated_at}
    mapping: {email: agent.email}
"""


@pytest.fixture
def load_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """``load_location(**variables)``: a fresh import of the code location with exactly these
    PENDO_* variables set and DAGSTER_HOME in tmp_path; its module is dropped afterwards."""

    def load(**variables: str) -> ModuleType:
        for name in VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop(MODULE, None)
        return importlib.import_module(MODULE)

    yield load
    sys.modules.pop(MODULE, None)


@pytest.fixture
def location_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PENDO_REGION": "eu",
        "PENDO_INTEGRATION_KEY": "made-up-key",
        "PENDO_TRACK_EVENT_SECRET": "made-up-secret",
        "PENDO_BASE_URL": "http://127.0.0.1:9",
        "PENDO_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'warehouse.db'}",
        "PENDO_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "PENDO_SYNCS_FILE": str(DEMO_SYNCS),
        "PENDO_MAX_REQUESTS_PER_SECOND": "25",
        "PENDO_MAX_IN_FLIGHT": "4",
    }


def keys(prefix: str) -> list[dg.AssetKey]:
    return [dg.AssetKey([prefix, name]) for name in DEMO_NAMES]


def check_keys(defs: dg.Definitions) -> set[dg.AssetCheckKey]:
    return set(defs.resolve_asset_graph().asset_check_keys)


def summary(defs: dg.Definitions) -> dict[str, Any]:
    """What a set of definitions holds, by name."""
    graph = defs.resolve_asset_graph()
    return {
        "assets": sorted(defs.resolve_all_asset_keys()),
        "checks": sorted(graph.asset_check_keys),
        "partitions": {key: graph.get(key).partitions_def for key in graph.get_all_asset_keys()},
        "jobs": {job.name: sorted(job.selection.resolve(graph)) for job in defs.jobs},
        "schedules": sorted(schedule.name for schedule in defs.schedules),
        "sensors": sorted(sensor.name for sensor in defs.sensors),
    }


# -- the code location ---------------------------------------------------------------------


def test_code_location_holds_both_assets_of_every_demo_sync(
    load_location: Any, location_env: dict[str, str]
) -> None:
    defs = load_location(**location_env).defs

    assert sorted(defs.resolve_all_asset_keys()) == sorted(keys("pendo") + keys("warehouse"))


def test_code_location_holds_the_two_checks_of_every_demo_sync(
    load_location: Any, location_env: dict[str, str]
) -> None:
    defs = load_location(**location_env).defs

    assert check_keys(defs) == {
        *(dg.AssetCheckKey(key, "identifiers_not_null") for key in keys("warehouse")),
        *(dg.AssetCheckKey(key, "failure_rate") for key in keys("pendo")),
    }


def test_code_location_holds_a_job_a_schedule_and_a_sensor_per_sync(
    load_location: Any, location_env: dict[str, str]
) -> None:
    held = summary(load_location(**location_env).defs)

    assert held["jobs"] == {
        f"{name}_sync": [dg.AssetKey(["pendo", name]), dg.AssetKey(["warehouse", name])]
        for name in DEMO_NAMES
    }
    assert held["schedules"] == [f"{name}_sync_daily" for name in DEMO_NAMES]
    assert held["sensors"] == sorted(
        f"{name}_{kind}"
        for name in DEMO_NAMES
        for kind in ("warehouse_changes", "retry_failed_rows")
    )


def test_code_location_partitions_every_asset_by_utc_day_from_the_files_start_date(
    load_location: Any, location_env: dict[str, str]
) -> None:
    held = summary(load_location(**location_env).defs)

    assert set(held["partitions"].values()) == {
        dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="UTC")
    }


def test_code_location_configures_its_resources_from_the_variables(
    load_location: Any, location_env: dict[str, str]
) -> None:
    resources = load_location(**location_env).defs.resources

    pendo = resources["pendo"]
    assert (pendo.region, pendo.base_url) == ("eu", "http://127.0.0.1:9")
    assert (pendo.max_requests_per_second, pendo.max_in_flight) == (25.0, 4)
    # Secrets and URLs stay variables, so the UI shows their names and never their values.
    assert pendo.integration_key == dg.EnvVar("PENDO_INTEGRATION_KEY")
    assert pendo.track_event_secret == dg.EnvVar("PENDO_TRACK_EVENT_SECRET")
    assert resources["warehouse"].url == dg.EnvVar("PENDO_WAREHOUSE_URL")
    assert resources["sync_state"].url == dg.EnvVar("PENDO_STATE_URL")


def test_code_location_validates_as_loadable(
    load_location: Any, location_env: dict[str, str]
) -> None:
    dg.Definitions.validate_loadable(load_location(**location_env).defs)


def test_code_location_without_variables_is_the_demo_under_dagster_home(
    load_location: Any, tmp_path: Path
) -> None:
    defs = load_location().defs

    assert sorted(defs.resolve_all_asset_keys()) == sorted(keys("pendo") + keys("warehouse"))
    assert defs.resources["warehouse"].url == f"sqlite:///{tmp_path / 'demo_warehouse.db'}"
    assert defs.resources["sync_state"].url == f"sqlite:///{tmp_path / 'pendo_sync_state.db'}"
    pendo = defs.resources["pendo"]
    assert (pendo.region, pendo.integration_key, pendo.track_event_secret) == ("us", None, None)


def test_a_bad_syncs_file_fails_loading_naming_the_file_the_sync_and_the_reason(
    load_location: Any, tmp_path: Path
) -> None:
    syncs = tmp_path / "syncs.yaml"
    syncs.write_text(BROKEN_SYNCS)

    with pytest.raises(SyncConfigError) as raised:
        load_location(PENDO_SYNCS_FILE=str(syncs))

    assert str(raised.value) == f"{syncs}: sync 'broken': required field 'visitorId' is not mapped"


def test_a_missing_syncs_file_fails_loading_naming_the_file(
    load_location: Any, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.yaml"

    with pytest.raises(SyncConfigError) as raised:
        load_location(PENDO_SYNCS_FILE=str(missing))

    assert str(raised.value) == (
        f"{missing}: cannot read the syncs file: No such file or directory"
    )


def test_dagster_reports_a_bad_syncs_file_when_validating_the_location(tmp_path: Path) -> None:
    syncs = tmp_path / "syncs.yaml"
    syncs.write_text(BROKEN_SYNCS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENDO_")}
    env.update({"PENDO_SYNCS_FILE": str(syncs), "DAGSTER_HOME": str(tmp_path)})
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())

    completed = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m", MODULE],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )

    assert completed.returncode == 1
    output = completed.stdout + completed.stderr
    assert f"{syncs}: sync 'broken': required field 'visitorId' is not mapped" in output


# -- the factory -----------------------------------------------------------------------------


def resources() -> dict[str, Any]:
    return {
        "pendo": PendoResource(),
        "warehouse": WarehouseResource(url="sqlite://"),
        "sync_state": SyncStateResource(url="sqlite://"),
    }


def test_factory_builds_the_same_definitions_for_specs_made_in_code_as_for_the_file() -> None:
    from_file = build_pendo_definitions(load_syncs_file(DEMO_SYNCS), resources=resources())
    in_code = [
        SyncSpec(
            name="visitor_metadata",
            object_type="visitor_metadata",
            source=SourceSpec(table="visitors", partition_column="updated_at"),
            mapping={
                "id": "visitorId",
                "account_id": "accountId",
                "plan": "plan",
                "seats": "seats",
                "is_trial": "is_trial",
                "signup_date": "signup_date",
                "email": "agent.email",
            },
        ),
        SyncSpec(
            name="account_metadata",
            object_type="account_metadata",
            source=SourceSpec(table="accounts", partition_column="updated_at"),
            mapping={"id": "accountId", "name": "name", "tier": "tier", "arr": "arr"},
            max_failure_rate=0.05,
        ),
        SyncSpec(
            name="track_events",
            object_type="track_events",
            source=SourceSpec(table="events", partition_column="occurred_at"),
            mapping={
                "visitor_id": "visitorId",
                "account_id": "accountId",
                "event_name": "event",
                "occurred_at": "timestamp",
                "properties": "properties",
                "feature": "feature",
                "duration_ms": "duration_ms",
                "ip": "context_ip",
                "user_agent": "context_user_agent",
                "url": "context_url",
            },
        ),
    ]
    assert tuple(in_code) == load_syncs_file(DEMO_SYNCS).syncs

    from_code = build_pendo_definitions(
        in_code, start_date=date(2026, 11, 1), resources=resources()
    )

    assert summary(from_code) == summary(from_file)


def test_factory_gives_a_sync_made_in_code_its_group_kinds_pool_and_retry_policy() -> None:
    spec = SyncSpec(
        name="crm_accounts",
        object_type="account_metadata",
        source=SourceSpec(query="select * from crm.accounts", partition_column="changed_at"),
        mapping={"account_key": "accountId", "segment": "segment"},
    )

    defs = build_pendo_definitions([spec], start_date=date(2026, 1, 1), resources=resources())

    warehouse = defs.resolve_assets_def(dg.AssetKey(["warehouse", "crm_accounts"]))
    pendo = defs.resolve_assets_def(dg.AssetKey(["pendo", "crm_accounts"]))
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    assert specs[warehouse.key].group_name == specs[pendo.key].group_name == "crm_accounts"
    assert (specs[warehouse.key].kinds, specs[pendo.key].kinds) == ({"sql"}, {"pendo"})
    assert [dep.asset_key for dep in specs[pendo.key].deps] == [warehouse.key]
    assert pendo.op.pool == "pendo_api"
    assert pendo.op.retry_policy == dg.RetryPolicy(
        max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL
    )
    assert warehouse.op.retry_policy is None
    dg.Definitions.validate_loadable(defs)


def test_factory_refuses_two_syncs_of_one_name() -> None:
    spec = SyncSpec(
        name="twice",
        object_type="account_metadata",
        source=SourceSpec(table="accounts", partition_column="updated_at"),
        mapping={"id": "accountId", "name": "name"},
    )

    with pytest.raises(ValueError) as raised:
        build_pendo_definitions([spec, spec], start_date=date(2026, 1, 1))

    assert str(raised.value) == "duplicate sync names: ['twice']"


def test_factory_needs_a_start_date_for_specs_made_in_code() -> None:
    with pytest.raises(ValueError) as raised:
        build_pendo_definitions(list(load_syncs_file(DEMO_SYNCS).syncs))

    assert str(raised.value) == "start_date is needed when syncs are given as a list of SyncSpec"
