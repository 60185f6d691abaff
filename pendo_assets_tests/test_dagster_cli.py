"""``dagster asset materialize -m pendo_assets.definitions --select '+pendo/visitor_metadata'
--partition DAY`` in a subprocess, on a real DAGSTER_HOME, against the demo warehouse and the demo
sandbox; the materialization is then read back from that instance."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import pytest
import sqlalchemy as sa

from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.record.failure_store import FailureStore

if TYPE_CHECKING:
    from pendo_assets_tests.conftest import DemoLocation

REPO = Path(__file__).resolve().parents[1]
PENDO_KEY = dg.AssetKey(["pendo", "visitor_metadata"])
WAREHOUSE_KEY = dg.AssetKey(["warehouse", "visitor_metadata"])


@dataclass
class CliRun:
    location: DemoLocation
    partition: str
    completed: subprocess.CompletedProcess[str]
    sandbox_state: dict[str, Any]


@pytest.fixture(scope="module")
def cli_run(
    make_demo_location: Any,
    demo_sandbox_server: SandboxServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> CliRun:
    """One CLI materialization of the day holding the demo's visitor with text seats."""
    location = make_demo_location(tmp_path_factory.mktemp("cli") / "dagster_home")
    [text_seats_visitor] = location.summary.bad_rows["visitors_text_seats"]
    partition = visitor_rows(location)[text_seats_visitor][0]["updated_at"][:10]
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "asset",
        "materialize",
        "-m",
        "pendo_assets.definitions",
        "--select",
        "+pendo/visitor_metadata",
        "--partition",
        partition,
    ]
    completed = subprocess.run(
        command, env=location.env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    return CliRun(location, partition, completed, demo_sandbox_server.state(requests=False))


@pytest.fixture(scope="module")
def instance(cli_run: CliRun) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(cli_run.location.home)) as instance:
        yield instance


def visitor_rows(location: DemoLocation) -> dict[str | None, list[dict[str, Any]]]:
    """Every visitors row straight from the SQLite file, by id, in updated_at order."""
    path = location.warehouse_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("select * from visitors order by updated_at")]
    by_id: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        by_id.setdefault(row["id"], []).append(row)
    return by_id


def rows_of(run: CliRun) -> list[dict[str, Any]]:
    return [
        row
        for rows in visitor_rows(run.location).values()
        for row in rows
        if row["updated_at"].startswith(run.partition)
    ]


def last_rows(run: CliRun) -> dict[str, dict[str, Any]]:
    """The day's last row per id (rows without an id left out)."""
    last: dict[str, dict[str, Any]] = {}
    for row in rows_of(run):
        if row["id"] and row["id"].strip():
            last[row["id"]] = row
    return last


def epoch_ms(text: str | None) -> int | None:
    """SQLite keeps DATETIME as naive UTC ISO text; Pendo's time field gets epoch ms."""
    if text is None:
        return None
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def expected_visitors(run: CliRun) -> dict[str, dict[str, Any]]:
    """What Pendo should hold: the day's last row per id, in the types Pendo declares. A row
    with text seats does not fit Pendo's number field: it fails before sending, so Pendo holds
    nothing of it (not even its agent email)."""
    return {
        visitor_id: {
            "custom": {
                "accountId": row["account_id"],
                "plan": row["plan"],
                "seats": row["seats"],
                "is_trial": bool(row["is_trial"]),
                "signup_date": epoch_ms(row["signup_date"]),
            },
            "agent": {"email": row["email"]},
        }
        for visitor_id, row in last_rows(run).items()
        if not isinstance(row["seats"], str)
    }


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> Any:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=10
    ).records
    [record] = records
    return record


def test_cli_materialization_exits_zero(cli_run: CliRun) -> None:
    assert cli_run.completed.returncode == 0, cli_run.completed.stderr[-3000:]


def test_the_sandbox_holds_the_visitors_of_that_day_and_no_other(cli_run: CliRun) -> None:
    assert cli_run.sandbox_state["metadata"]["visitor"] == expected_visitors(cli_run)
    assert cli_run.sandbox_state["metadata"]["account"] == {}
    assert cli_run.sandbox_state["events"] == []


def test_the_instance_holds_one_successful_run_of_that_partition(
    cli_run: CliRun, instance: dg.DagsterInstance
) -> None:
    [run] = instance.get_runs()

    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/partition"] == cli_run.partition
    assert run.asset_selection == {WAREHOUSE_KEY, PENDO_KEY}


def test_the_instance_holds_the_pendo_materialization_with_every_row_accounted_for(
    cli_run: CliRun, instance: dg.DagsterInstance
) -> None:
    record = latest_metadata(instance, PENDO_KEY, cli_run.partition)
    metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    rows = rows_of(cli_run)
    valid_ids = [r["id"] for r in rows if r["id"] and r["id"].strip()]
    unfit = [v for v, row in last_rows(cli_run).items() if isinstance(row["seats"], str)]

    assert metadata["dagster/row_count"] == len(rows)
    assert metadata["skipped"] == len(valid_ids) - len(set(valid_ids))
    assert metadata["skipped_unchanged"] == 0  # a fresh state database
    assert metadata["failed"] == len(rows) - len(valid_ids) + len(unfit)
    assert metadata["sent"] == len(expected_visitors(cli_run))
    assert metadata["dagster/row_count"] == (
        metadata["sent"] + metadata["failed"] + metadata["skipped"]
    )
    assert len(unfit) == 1  # the day of the text seats


def test_the_instance_holds_the_warehouse_materialization_of_the_days_rows(
    cli_run: CliRun, instance: dg.DagsterInstance
) -> None:
    record = latest_metadata(instance, WAREHOUSE_KEY, cli_run.partition)

    assert record.asset_materialization.metadata["dagster/row_count"].value == len(rows_of(cli_run))


def test_the_runs_failed_rows_are_in_the_state_database_of_the_location(
    cli_run: CliRun, instance: dg.DagsterInstance
) -> None:
    [run] = instance.get_runs()
    engine = sa.create_engine(cli_run.location.state_url, poolclass=sa.NullPool)
    failures = FailureStore(engine).query(sync_name="visitor_metadata")
    engine.dispose()
    [text_seats_visitor] = cli_run.location.summary.bad_rows["visitors_text_seats"]

    assert [(f["partition_key"], f["run_id"]) for f in failures] == [
        (cli_run.partition, run.run_id)
    ]
    assert (failures[0]["record_id"], failures[0]["reason"]) == (
        text_seats_visitor,
        "value 'lots' does not fit Pendo field 'seats': expects number",
    )


def test_no_copy_of_the_warehouse_rows_is_kept_in_dagster_storage(cli_run: CliRun) -> None:
    storage = cli_run.location.home / "storage"
    kept = sorted(p.relative_to(storage) for p in storage.rglob("*") if p.is_file())
    assert [p for p in kept if p.parts[0] == "warehouse"] == []
