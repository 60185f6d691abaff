"""`dagster asset materialize` in a subprocess from PostgreSQL and DuckDB warehouses with their
native types, into a strict sandbox: exactly what Pendo receives for each type."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from pendo_assets.sandbox import SandboxConfig, SandboxServer
from pendo_assets_tests.conftest import require_duckdb

REPO = Path(__file__).resolve().parents[1]
INTEGRATION_KEY = "made-up-key-for-cli-warehouses"
TRACK_SECRET = "made-up-secret-for-cli-warehouses"
VISITOR_ID = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
ORG_ID = "11111111-2222-3333-4444-555555555555"
EVENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
BIG = 12345678901234567891  # more digits than a float keeps


@dataclass
class Warehouse:
    url: str
    run_sql: Callable[[list[str]], None]


@pytest.fixture
def strict_sandbox() -> Iterator[SandboxServer]:
    config = SandboxConfig(
        integration_key=INTEGRATION_KEY,
        track_event_secret=TRACK_SECRET,
        fields={
            "visitor": {
                "org_id": "string",
                "big": "number",
                "ratio": "number",
                "signup_date": "time",
                "last_ip": "string",
            }
        },
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "duckdb"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    if request.param == "duckdb":
        require_duckdb()
        url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        schema = request.getfixturevalue("pg_schema")
        url = f"{request.getfixturevalue('postgres_url')}?options=-csearch_path%3D{schema}"

    def run_sql(statements: list[str]) -> None:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
        engine.dispose()  # DuckDB: one process holds the file at a time

    return Warehouse(url, run_sql)


def native_tables(warehouse: Warehouse, day: date) -> None:
    """One visitor and one event of `day`, in each dialect's own types."""
    postgres = warehouse.url.startswith("postgresql")
    ip = "inet" if postgres else "VARCHAR"
    big = "numeric(20,0)" if postgres else "HUGEINT"
    json = "jsonb" if postgres else "JSON"
    at = f"{day.isoformat()} 10:30:00+00"
    warehouse.run_sql(
        [
            f"CREATE TABLE visitors (id uuid, org uuid, big {big}, ratio numeric(10,2), "
            f"signup date, ip {ip}, updated_at timestamptz)",
            f"INSERT INTO visitors VALUES ('{VISITOR_ID}', '{ORG_ID}', {BIG}, 12.50, "
            f"'2026-01-15', '10.1.2.3', '{at}')",
            f"CREATE TABLE events (event_uuid uuid, visitor_id varchar, event_name varchar, "
            f"occurred_at timestamptz, ip {ip}, amount numeric(12,2), meta {json})",
            f"INSERT INTO events VALUES ('{EVENT_ID}', 'v-1', 'Exported', '{at}', '10.9.8.7', "
            f"""19.99, '{{"plan": "pro", "seats": 3}}')""",
        ]
    )


def syncs_file(path: Path, start: date) -> Path:
    syncs = {
        "start_date": start.isoformat(),
        "syncs": [
            {
                "name": "visitors",
                "object_type": "visitor_metadata",
                "source": {"table": "visitors", "partition_column": "updated_at"},
                "mapping": {
                    "id": "visitorId",
                    "org": "org_id",
                    "big": "big",
                    "ratio": "ratio",
                    "signup": "signup_date",
                    "ip": "last_ip",
                },
            },
            {
                "name": "events",
                "object_type": "track_events",
                "source": {"table": "events", "partition_column": "occurred_at"},
                "mapping": {
                    "event_uuid": "event_id",
                    "visitor_id": "visitorId",
                    "event_name": "event",
                    "occurred_at": "timestamp",
                    "ip": "context_ip",
                    "amount": "amount",
                    "meta": "properties",
                },
            },
        ],
    }
    path.write_text(yaml.safe_dump(syncs))
    return path


def materialize(sync: str, day: date, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "asset",
        "materialize",
        "-m",
        "pendo_assets.definitions",
        "--select",
        f"+pendo/{sync}",
        "--partition",
        day.isoformat(),
    ]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_native_types_reach_pendo_losslessly_through_the_cli(
    warehouse: Warehouse, strict_sandbox: SandboxServer, tmp_path: Path, sync_day: date
) -> None:
    native_tables(warehouse, sync_day)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PENDO_", "DAGSTER_"))}
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "PENDO_BASE_URL": strict_sandbox.url,
            "PENDO_INTEGRATION_KEY": INTEGRATION_KEY,
            "PENDO_TRACK_EVENT_SECRET": TRACK_SECRET,
            "PENDO_SYNCS_FILE": str(syncs_file(tmp_path / "syncs.yaml", sync_day)),
            "PENDO_WAREHOUSE_URL": warehouse.url,
            "PENDO_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        }
    )

    for sync in ("visitors", "events"):
        completed = materialize(sync, sync_day, env)
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    stored = strict_sandbox.state(requests=False)
    assert stored["metadata"]["visitor"] == {
        VISITOR_ID: {
            "custom": {
                "org_id": ORG_ID,
                "big": BIG,
                "ratio": 12.5,
                "signup_date": _ms(datetime.combine(date(2026, 1, 15), time())),
                "last_ip": "10.1.2.3",
            },
            "agent": {},
        }
    }
    [event] = stored["events"]
    assert {k: event[k] for k in ("visitorId", "event", "timestamp", "properties")} == {
        "visitorId": "v-1",
        "event": "Exported",
        "timestamp": _ms(datetime.combine(sync_day, time(10, 30))),
        "properties": {"plan": "pro", "seats": 3, "amount": 19.99},
    }
    assert event["context"]["ip"] == "10.9.8.7"


def _ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)
