"""Both assets of a sync through ``dagster.materialize`` from DuckDB and PostgreSQL warehouses.

Native types as the warehouse hands them over (UUID, HUGEINT/numeric, inet, JSON/jsonb,
timestamptz, date, bytea), the exact payloads the sandbox stored, and the warehouse asset's
``rows_without_partition``. PostgreSQL runs in the test's own schema (``search_path`` in the URL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pendo_assets.sandbox import SandboxConfig, SandboxServer
from pendo_assets.sync.spec import SourceSpec, SyncSpec
from pendo_assets_tests.conftest import require_duckdb

VISITOR_ID = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
VISITORS = SyncSpec(
    name="visitors_to_pendo",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={
        "id": "visitorId",
        "plan": "plan",
        "seats": "seats",
        "is_trial": "is_trial",
        "signup_date": "signup_date",
        "email": "agent.email",
    },
)
EVENTS = SyncSpec(
    name="events_to_pendo",
    object_type="track_events",
    source=SourceSpec(partition_column="on_day", table="events"),
    mapping={
        "visitor_id": "visitorId",
        "event_name": "event",
        "occurred_at": "timestamp",
        "properties": "properties",
        "ip": "context_ip",
    },
)
# Column types per warehouse: (visitor id, seats, ip, properties).
TYPES = {
    "duckdb": ("UUID", "HUGEINT", "VARCHAR", "JSON"),
    "postgres": ("uuid", "numeric(20, 0)", "inet", "jsonb"),
}


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, Callable[[str], str]]]:
    """(backend, setup): ``setup(sql)`` runs the statements and returns the warehouse URL."""
    if request.param == "duckdb":
        require_duckdb()
        path = tmp_path / "warehouse.duckdb"
        url, reader_url = f"duckdb:///{path}", f"duckdb:///{path}?access_mode=read_only"
    else:
        base, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")
        url = reader_url = f"{base}?options=-csearch_path%3D{schema}"

    def setup(sql: str) -> str:
        writer = sa.create_engine(url, poolclass=sa.NullPool)
        with writer.begin() as conn:
            for statement in sql.split(";"):
                if statement.strip():
                    conn.exec_driver_sql(statement)
        writer.dispose()
        return reader_url

    yield request.param, setup


def visitors_sql(backend: str, day: date) -> str:
    id_type, seats_type, _, _ = TYPES[backend]
    return f"""
    CREATE TABLE visitors (id {id_type}, plan VARCHAR, seats {seats_type}, is_trial BOOLEAN,
                           signup_date TIMESTAMPTZ, email VARCHAR, updated_at TIMESTAMPTZ);
    INSERT INTO visitors VALUES
      ('{VISITOR_ID}', 'pro', 12345678901234567, TRUE, '{at(day, 8).isoformat()}',
       'a@example.com', '{at(day, 9).isoformat()}'),
      ('b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 'free', 1, FALSE, NULL, 'b@example.com', NULL)
    """


def events_sql(backend: str, day: date) -> str:
    _, _, ip_type, json_type = TYPES[backend]
    return f"""
    CREATE TABLE events (visitor_id VARCHAR, event_name VARCHAR, occurred_at TIMESTAMPTZ,
                         on_day DATE, properties {json_type}, ip {ip_type});
    INSERT INTO events VALUES
      ('v-1', 'Signed In', '{at(day, 10).isoformat()}', '{day}', '{{"plan": "pro"}}',
       '203.0.113.7'),
      ('v-2', 'Signed Out', '{at(day, 11).isoformat()}', NULL, NULL, NULL)
    """


def test_a_visitor_partition_from_the_warehouse_stores_exact_values(
    warehouse: tuple[str, Callable[[str], str]],
    materialize_sync: Any,
    sync_resources: Any,
    sandbox: SandboxServer,
    sync_day: date,
) -> None:
    backend, setup = warehouse
    url = setup(visitors_sql(backend, sync_day))

    run = materialize_sync(VISITORS, sync_day, resources=sync_resources(warehouse_url=url))

    assert run.result.success
    assert sandbox.state(requests=False)["metadata"]["visitor"] == {
        VISITOR_ID: {
            "custom": {
                "plan": "pro",
                "seats": 12345678901234567,
                "is_trial": True,
                "signup_date": ms(at(sync_day, 8)),
            },
            "agent": {"email": "a@example.com"},
        }
    }


def test_the_warehouse_asset_reports_rows_without_partition(
    warehouse: tuple[str, Callable[[str], str]],
    materialize_sync: Any,
    sync_resources: Any,
    sync_day: date,
) -> None:
    backend, setup = warehouse
    url = setup(visitors_sql(backend, sync_day))

    run = materialize_sync(VISITORS, sync_day, resources=sync_resources(warehouse_url=url))

    metadata = run.metadata("warehouse")
    assert (metadata["dagster/row_count"], metadata["rows_without_partition"]) == (1, 1)


def test_an_event_partition_from_the_warehouse_sends_exact_events(
    warehouse: tuple[str, Callable[[str], str]],
    materialize_sync: Any,
    sync_resources: Any,
    sandbox: SandboxServer,
    sync_day: date,
) -> None:
    backend, setup = warehouse
    url = setup(events_sql(backend, sync_day))

    run = materialize_sync(EVENTS, sync_day, resources=sync_resources(warehouse_url=url))

    assert run.result.success
    bodies = [r["body"] for r in sandbox.state()["requests"] if r["path"] == "/data/track"]
    assert bodies == [
        {
            "type": "track",
            "event": "Signed In",
            "visitorId": "v-1",
            "timestamp": ms(at(sync_day, 10)),
            "properties": {"plan": "pro"},
            "context": {"ip": "203.0.113.7"},
        }
    ]


def test_an_event_whose_properties_are_a_json_array_fails_alone(
    warehouse: tuple[str, Callable[[str], str]],
    materialize_sync: Any,
    sync_resources: Any,
    sandbox: SandboxServer,
    sync_day: date,
) -> None:
    backend, setup = warehouse
    url = setup(
        events_sql(backend, sync_day)
        + f""";
        INSERT INTO events VALUES ('v-3', 'Listed', '{at(sync_day, 12).isoformat()}',
                                   '{sync_day}', '[1, 2]', NULL)"""
    )

    run = materialize_sync(EVENTS, sync_day, resources=sync_resources(warehouse_url=url))

    bodies = [r["body"] for r in sandbox.state()["requests"] if r["path"] == "/data/track"]
    metadata = run.metadata("pendo")
    assert ([b["visitorId"] for b in bodies], metadata["sent"], metadata["failed"]) == (
        ["v-1"],
        1,
        1,
    )


# Per warehouse: (list, bytes, JSON object, JSON array or None, decimal) column types and values.
UNSENDABLE = {
    "postgres": (
        ("text[]", "bytea", "jsonb", "numeric(10, 2)"),
        ("ARRAY['a', 'b']", "'\\x00ff'::bytea", """'{"a": 1}'""", "'[1, 2]'"),
    ),
    "duckdb": (
        ("VARCHAR[]", "BLOB", "STRUCT(a INTEGER)", "DECIMAL(10, 2)"),
        ("['a', 'b']", "'\\x00\\xFF'::BLOB", "{'a': 1}", None),
    ),
}


@pytest.fixture
def typed_sandbox(integration_key: str, track_event_secret: str) -> Iterator[SandboxServer]:
    fields = {"tags": "string", "blob": "string", "doc": "string", "ratio": "number"}
    config = SandboxConfig(
        integration_key=integration_key,
        track_event_secret=track_event_secret,
        fields={"visitor": fields},
    )
    with SandboxServer(config) as server:
        yield server


def test_values_with_no_json_scalar_form_fail_their_own_row_and_the_rest_go_out(
    warehouse: tuple[str, Callable[[str], str]],
    materialize_sync: Any,
    sync_resources: Any,
    typed_sandbox: SandboxServer,
    sync_day: date,
) -> None:
    backend, setup = warehouse
    (list_type, bytes_type, doc_type, decimal_type), values = UNSENDABLE[backend]
    a_list, some_bytes, an_object, an_array = values
    when = f"'{at(sync_day, 9).isoformat()}'"
    rows = [
        f"('v-ok', NULL, NULL, NULL, 12.50, {when})",
        f"('v-list', {a_list}, NULL, NULL, NULL, {when})",
        f"('v-bytes', NULL, {some_bytes}, NULL, NULL, {when})",
        f"('v-object', NULL, NULL, {an_object}, NULL, {when})",
    ]
    if an_array is not None:
        rows.append(f"('v-array', NULL, NULL, {an_array}, NULL, {when})")
    url = setup(
        f"CREATE TABLE visitors (id VARCHAR, tags {list_type}, blob {bytes_type}, "
        f"doc {doc_type}, ratio {decimal_type}, updated_at TIMESTAMPTZ);"
        f"INSERT INTO visitors VALUES {', '.join(rows)}"
    )
    spec = SyncSpec(
        name="typed_visitors",
        object_type="visitor_metadata",
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "tags": "tags", "blob": "blob", "doc": "doc", "ratio": "ratio"},
        max_failure_rate=1.0,
    )

    run = materialize_sync(
        spec, sync_day, resources=sync_resources(warehouse_url=url, base_url=typed_sandbox.url)
    )

    assert run.result.success
    assert typed_sandbox.state(requests=False)["metadata"]["visitor"] == {
        "v-ok": {"custom": {"tags": None, "blob": None, "doc": None, "ratio": 12.5}, "agent": {}}
    }
    metadata = run.metadata()
    expected = {"v-list": "tags", "v-bytes": "blob", "v-object": "doc"}
    if an_array is not None:
        expected["v-array"] = "doc"
    assert (metadata["sent"], metadata["failed"]) == (1, len(expected))
    table = metadata["failures"]
    for record_id, column in expected.items():
        assert f"| {record_id} | {column} | column '{column}': value is " in table
