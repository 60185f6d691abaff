"""The syncs file: what loads, and every load-time error naming the file, the sync and why."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from pendo_assets.sync.spec import (
    SourceSpec,
    SyncConfigError,
    SyncsFile,
    SyncSpec,
    load_syncs_file,
)

VISITORS: dict[str, Any] = {
    "name": "visitors",
    "object_type": "visitor_metadata",
    "mode": "upsert",
    "source": {"table": "analytics.visitors", "partition_column": "updated_at"},
    "mapping": {"id": "visitorId", "plan": "plan", "email": "agent.email"},
    "max_failure_rate": 0.02,
    "description": "Visitor plans",
}
ACCOUNTS: dict[str, Any] = {
    "name": "accounts",
    "object_type": "account_metadata",
    "source": {
        "query": "WITH a AS (SELECT * FROM accounts) SELECT * FROM a",
        "partition_column": "updated_at",
    },
    "mapping": {"account_id": "accountId", "tier": "tier"},
}
EVENTS: dict[str, Any] = {
    "name": "events",
    "object_type": "track_events",
    "source": {"table": "events", "partition_column": "occurred_at"},
    "mapping": {
        "visitor_id": "visitorId",
        "account_id": "accountId",
        "event_name": "event",
        "occurred_at": "timestamp",
        "props": "properties",
        "ip": "context_ip",
        "feature": "feature",
    },
}


def write_syncs(tmp_path: Path, *syncs: dict[str, Any], **top: Any) -> Path:
    path = tmp_path / "syncs.yaml"
    data = {"start_date": "2026-11-01", "syncs": [copy.deepcopy(s) for s in syncs], **top}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_error(tmp_path: Path, *syncs: dict[str, Any], **top: Any) -> tuple[Path, str]:
    path = write_syncs(tmp_path, *syncs, **top)
    with pytest.raises(SyncConfigError) as raised:
        load_syncs_file(path)
    return path, str(raised.value)


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    sync = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            sync.pop(key, None)
        else:
            sync[key] = value
    return sync


# -- a valid file ------------------------------------------------------------------------------


def test_a_valid_file_loads_into_typed_specs(tmp_path: Path) -> None:
    path = write_syncs(tmp_path, VISITORS, ACCOUNTS, EVENTS)
    loaded = load_syncs_file(path)
    assert loaded == SyncsFile(
        start_date=date(2026, 11, 1),
        origin=str(path),
        syncs=(
            SyncSpec(
                name="visitors",
                object_type="visitor_metadata",
                mode="upsert",
                source=SourceSpec(partition_column="updated_at", table="analytics.visitors"),
                mapping={"id": "visitorId", "plan": "plan", "email": "agent.email"},
                max_failure_rate=0.02,
            ),
            SyncSpec(
                name="accounts",
                object_type="account_metadata",
                source=SourceSpec(
                    partition_column="updated_at",
                    query="WITH a AS (SELECT * FROM accounts) SELECT * FROM a",
                ),
                mapping={"account_id": "accountId", "tier": "tier"},
            ),
            SyncSpec(
                name="events",
                object_type="track_events",
                source=SourceSpec(partition_column="occurred_at", table="events"),
                mapping=EVENTS["mapping"],
            ),
        ),
    )
    assert loaded.by_name("visitors").description == "Visitor plans"
    assert loaded.by_name("visitors").source.schema_and_table == ("analytics", "visitors")


def test_mode_defaults_to_upsert_and_max_failure_rate_to_one_percent(tmp_path: Path) -> None:
    spec = load_syncs_file(write_syncs(tmp_path, ACCOUNTS)).by_name("accounts")
    assert (spec.mode, spec.max_failure_rate) == ("upsert", 0.01)


def test_update_mode_loads_for_metadata(tmp_path: Path) -> None:
    spec = load_syncs_file(write_syncs(tmp_path, changed(VISITORS, mode="update"))).syncs[0]
    assert spec.mode == "update"


@pytest.mark.parametrize("rate", [0, 1, 0.5])
def test_max_failure_rate_bounds_are_inclusive(tmp_path: Path, rate: float) -> None:
    spec = load_syncs_file(write_syncs(tmp_path, changed(VISITORS, max_failure_rate=rate)))
    assert spec.syncs[0].max_failure_rate == rate


def test_columns_are_the_mapped_columns_then_the_partition_column(tmp_path: Path) -> None:
    loaded = load_syncs_file(write_syncs(tmp_path, VISITORS, EVENTS))
    assert loaded.by_name("visitors").columns == ["id", "plan", "email", "updated_at"]
    # a mapped partition column is read once
    assert loaded.by_name("events").columns == [
        "visitor_id",
        "account_id",
        "event_name",
        "occurred_at",
        "props",
        "ip",
        "feature",
    ]


def test_id_column_is_the_column_mapped_to_the_object_types_id(tmp_path: Path) -> None:
    loaded = load_syncs_file(write_syncs(tmp_path, VISITORS, ACCOUNTS, EVENTS))
    assert [(s.id_target, s.id_column) for s in loaded.syncs] == [
        ("visitorId", "id"),
        ("accountId", "account_id"),
        ("visitorId", "visitor_id"),
    ]


# -- errors: each names the file, the sync and the reason --------------------------------------


def test_unknown_object_type(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, changed(VISITORS, object_type="visitors"))
    assert message == (
        f"{path}: sync 'visitors': unknown object_type 'visitors'; "
        "expected one of visitor_metadata, account_metadata, track_events"
    )


def test_unknown_mode(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, changed(VISITORS, mode="merge"))
    assert (
        message
        == f"{path}: sync 'visitors': unknown mode 'merge'; expected one of upsert, insert, update"
    )


def test_retry_settings_are_read_and_checked(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, changed(VISITORS, retry={"max_attempts": -1}))
    assert message == (
        f"{path}: sync 'visitors': retry.max_attempts must be a whole number >= 0, got -1"
    )
    path, message = load_error(tmp_path, changed(VISITORS, retry={"tries": 2}))
    assert message == (
        f"{path}: sync 'visitors': `retry` takes ['base_delay_minutes', 'max_attempts'], "
        "got {'tries': 2}"
    )


def test_update_mode_does_not_apply_to_track_events(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, changed(EVENTS, mode="update"))
    assert message == (
        f"{path}: sync 'events': track events are append-only: mode 'update' does not apply to them"
    )


def test_duplicate_sync_names(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, VISITORS, changed(ACCOUNTS, name="visitors"))
    assert message == f"{path}: sync 'visitors': duplicate sync name"


@pytest.mark.parametrize(
    ("base", "drop", "target"),
    [
        (VISITORS, "id", "visitorId"),
        (ACCOUNTS, "account_id", "accountId"),
        (EVENTS, "visitor_id", "visitorId"),
        (EVENTS, "event_name", "event"),
        (EVENTS, "occurred_at", "timestamp"),
    ],
)
def test_missing_required_field_per_object_type(
    tmp_path: Path, base: dict[str, Any], drop: str, target: str
) -> None:
    mapping = {k: v for k, v in base["mapping"].items() if k != drop}
    path, message = load_error(tmp_path, changed(base, mapping=mapping))
    assert message == f"{path}: sync {base['name']!r}: required field {target!r} is not mapped"


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("1plan", "name '1plan' starts with a digit"),
        ("plan-name", "name 'plan-name' may hold only letters, digits and underscores"),
        ("p" * 33, f"name {'p' * 33!r} is longer than 32 characters"),
        ("__plan__", "name '__plan__' is wrapped in double underscores"),
        ("agent.1email", "name '1email' starts with a digit"),
        ("agent.", "name must be a non-empty string"),
    ],
)
def test_bad_pendo_field_name(tmp_path: Path, target: str, problem: str) -> None:
    mapping = {"id": "visitorId", "plan": target}
    path, message = load_error(tmp_path, changed(VISITORS, mapping=mapping))
    assert message == f"{path}: sync 'visitors': column 'plan': Pendo field {problem}"


def test_a_32_character_field_name_is_fine(tmp_path: Path) -> None:
    mapping = {"id": "visitorId", "plan": "p" * 32}
    spec = load_syncs_file(write_syncs(tmp_path, changed(VISITORS, mapping=mapping))).syncs[0]
    assert spec.column_for("p" * 32) == "plan"


def test_bad_event_property_name(tmp_path: Path) -> None:
    mapping = {**EVENTS["mapping"], "feature": "feature name"}
    path, message = load_error(tmp_path, changed(EVENTS, mapping=mapping))
    assert message == (
        f"{path}: sync 'events': column 'feature': event property name 'feature name' may hold "
        "only letters, digits and underscores; Pendo would hide it"
    )


def test_agent_fields_are_refused_on_track_events(tmp_path: Path) -> None:
    mapping = {**EVENTS["mapping"], "email": "agent.email"}
    path, message = load_error(tmp_path, changed(EVENTS, mapping=mapping))
    assert message == (
        f"{path}: sync 'events': column 'email': agent fields apply to metadata, "
        "not to track events"
    )


def test_a_field_mapped_from_two_columns(tmp_path: Path) -> None:
    mapping = {"id": "visitorId", "plan": "plan", "plan_name": "plan"}
    path, message = load_error(tmp_path, changed(VISITORS, mapping=mapping))
    assert message == (f"{path}: sync 'visitors': field 'plan' is mapped from more than one column")


def test_a_metadata_mapping_with_only_the_id_has_nothing_to_write(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, changed(VISITORS, mapping={"id": "visitorId"}))
    assert message == (
        f"{path}: sync 'visitors': mapping has no Pendo field to write besides 'visitorId'"
    )


@pytest.mark.parametrize(
    "source",
    [
        {"table": "visitors", "query": "SELECT 1", "partition_column": "updated_at"},
        {"partition_column": "updated_at"},
    ],
    ids=["both", "neither"],
)
def test_source_needs_exactly_one_of_table_or_query(tmp_path: Path, source: dict[str, Any]) -> None:
    path, message = load_error(tmp_path, changed(VISITORS, source=source))
    assert message == f"{path}: sync 'visitors': source needs exactly one of `table` or `query`"


@pytest.mark.parametrize("query", ["DELETE FROM visitors", "update visitors set plan = 'x'"])
def test_source_query_must_be_a_select(tmp_path: Path, query: str) -> None:
    source = {"query": query, "partition_column": "updated_at"}
    path, message = load_error(tmp_path, changed(VISITORS, source=source))
    assert message == (
        f"{path}: sync 'visitors': source query must be a SELECT (or WITH ... SELECT): "
        "the warehouse is read-only"
    )


def test_source_needs_a_partition_column(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, changed(VISITORS, source={"table": "visitors"}))
    assert message == f"{path}: sync 'visitors': source needs a `partition_column`"


@pytest.mark.parametrize("rate", [1.5, -0.1, "high", True])
def test_max_failure_rate_out_of_range(tmp_path: Path, rate: Any) -> None:
    path, message = load_error(tmp_path, changed(VISITORS, max_failure_rate=rate))
    assert message == (
        f"{path}: sync 'visitors': max_failure_rate must be a number from 0 to 1, got {rate!r}"
    )


def test_unknown_top_level_keys(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, VISITORS, schedule="daily")
    assert message == f"{path}: unknown top-level keys ['schedule']"


def test_unknown_sync_keys(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, changed(VISITORS, schedule="daily", batch=10))
    assert message == f"{path}: sync 'visitors': unknown keys ['batch', 'schedule']"


def test_unknown_source_keys(tmp_path: Path) -> None:
    source = {"table": "visitors", "partition_column": "updated_at", "where": "plan = 'x'"}
    path, message = load_error(tmp_path, changed(VISITORS, source=source))
    assert message == f"{path}: sync 'visitors': unknown source keys ['where']"


def test_every_problem_of_a_sync_is_reported_at_once(tmp_path: Path) -> None:
    bad = changed(
        VISITORS,
        mode="merge",
        mapping={"plan": "1plan"},
        max_failure_rate=2,
        source={"partition_column": "updated_at"},
    )
    path, message = load_error(tmp_path, bad)
    assert message == (
        f"{path}: sync 'visitors': unknown mode 'merge'; expected one of upsert, insert, update; "
        "source needs exactly one of `table` or `query`; "
        "required field 'visitorId' is not mapped; "
        "column 'plan': Pendo field name '1plan' starts with a digit; "
        "max_failure_rate must be a number from 0 to 1, got 2"
    )


def test_a_sync_without_a_usable_name_is_named_by_position(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, VISITORS, changed(ACCOUNTS, name=None))
    assert message == (
        f"{path}: sync #2: name must be letters, digits and underscores, not starting with a digit"
    )


def test_a_bad_name_holding_a_colon_is_quoted_whole(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, changed(VISITORS, name="daily: visitors"))
    assert message == (
        f"{path}: sync 'daily: visitors': name must be letters, digits and underscores, "
        "not starting with a digit"
    )


@pytest.mark.parametrize(
    ("top", "reason"),
    [
        ({"start_date": "November"}, "start_date must be a date like 2026-11-01, got 'November'"),
        ({"syncs": []}, "`syncs` must be a non-empty list"),
    ],
)
def test_file_level_errors(tmp_path: Path, top: dict[str, Any], reason: str) -> None:
    path = tmp_path / "syncs.yaml"
    path.write_text(yaml.safe_dump({"start_date": "2026-11-01", "syncs": [VISITORS], **top}))
    with pytest.raises(SyncConfigError) as raised:
        load_syncs_file(path)
    assert str(raised.value) == f"{path}: {reason}"


def test_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "syncs.yaml"
    path.write_text("syncs: [unclosed\n")
    with pytest.raises(SyncConfigError, match=f"^{path}: not valid YAML: "):
        load_syncs_file(path)


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(SyncConfigError) as raised:
        load_syncs_file(path)
    assert str(raised.value) == f"{path}: cannot read the syncs file: No such file or directory"


def test_a_spec_built_in_code_is_checked_too() -> None:
    with pytest.raises(SyncConfigError) as raised:
        SyncSpec(
            name="visitors",
            object_type="visitor_metadata",
            source=SourceSpec(partition_column="updated_at", table="visitors"),
            mapping={"plan": "plan"},
        )
    assert str(raised.value) == "sync 'visitors': required field 'visitorId' is not mapped"


def test_payloads_are_not_kept_unless_a_metadata_sync_asks(tmp_path: Path) -> None:
    path = write_syncs(tmp_path, VISITORS, changed(ACCOUNTS, keep_payloads=True))

    visitors, accounts = load_syncs_file(path).syncs

    assert (visitors.keep_payloads, accounts.keep_payloads) == (False, True)


def test_keep_payloads_must_be_a_boolean(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, changed(VISITORS, keep_payloads="yes"))
    assert message == f"{path}: sync 'visitors': keep_payloads must be true or false, got 'yes'"


def test_keep_payloads_does_not_apply_to_track_events(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, changed(EVENTS, keep_payloads=True))
    assert message == (
        f"{path}: sync 'events': keep_payloads applies to metadata syncs (events keep no payload)"
    )
