"""The code location served by ``dagster-webserver``: a partition backfill of one sync launched
through the GraphQL API, executed by ``dagster-daemon``, read back through GraphQL.

The webserver only records an asset backfill; the daemon's backfill loop submits its runs and
its run queue launches them. The daemon starts after the backfill is recorded, so its first
backfill iteration (at start-up, then every 30 s) picks it up at once.
"""

from __future__ import annotations

import socket
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import httpx
import pytest

from pendo_assets.sandbox import SandboxServer

if TYPE_CHECKING:
    from pendo_assets_tests.conftest import DemoLocation

SYNC = "account_metadata"
ASSETS = [{"path": ["warehouse", SYNC]}, {"path": ["pendo", SYNC]}]
STARTUP_SECONDS = 60
BACKFILL_SECONDS = 180
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
# Added to the repo's dagster.yaml: the default run queue, checked every second instead of 5.
QUEUE_EVERY_SECOND = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      partitionNames
      assetSelection { path }
      runs { runId status tags { key value } }
    }
  }
}
"""
WORKSPACE = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""
MATERIALIZATIONS = """
query Materializations($path: [String!]!, $partitions: [String!]) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition
        runId
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on FloatMetadataEntry { floatValue }
          ... on MarkdownMetadataEntry { mdStr }
        }
      }
    }
  }
}
"""


@dataclass
class Backfill:
    location: DemoLocation
    partitions: list[str]
    server_info: dict[str, Any]
    locations: list[dict[str, Any]]
    backfill_id: str
    backfill: dict[str, Any]
    materializations: dict[str, list[dict[str, Any]]]  # by asset: "pendo" / "warehouse"
    sandbox_state: dict[str, Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(url: str, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=60
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_until_serving(url: str, process: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``/server_info`` once it answers, and the workspace's locations once all are loaded."""
    deadline = time.monotonic() + STARTUP_SECONDS
    server_info = None
    while time.monotonic() < deadline:
        assert process.poll() is None, process.log.read_text()[-3000:]
        try:
            if server_info is None:
                response = httpx.get(f"{url}/server_info", timeout=2)
                if response.status_code == 200:
                    server_info = response.json()
            if server_info is not None:
                entries = graphql(url, WORKSPACE)["workspaceOrError"]["locationEntries"]
                if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                    return server_info, entries
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"not serving within {STARTUP_SECONDS}s: {process.log.read_text()}")


def wait_for_runs(url: str, backfill_id: str, count: int, daemon: Any) -> dict[str, Any]:
    """The backfill once ``count`` runs exist and all have finished."""
    deadline = time.monotonic() + BACKFILL_SECONDS
    while time.monotonic() < deadline:
        assert daemon.poll() is None, daemon.log.read_text()[-3000:]
        backfill = graphql(url, BACKFILL, id=backfill_id)["partitionBackfillOrError"]
        runs = backfill["runs"]
        if len(runs) == count and all(run["status"] in FINISHED for run in runs):
            return backfill
        time.sleep(0.5)
    raise AssertionError(
        f"backfill runs not finished within {BACKFILL_SECONDS}s: {backfill}\n"
        f"{daemon.log.read_text()[-3000:]}"
    )


def accounts_by_day(location: DemoLocation) -> dict[str, list[dict[str, Any]]]:
    """Every accounts row straight from the SQLite file, by the UTC day of its updated_at."""
    path = location.warehouse_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("select * from accounts")]
    days: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        day = datetime.fromisoformat(row["updated_at"]).astimezone(UTC).date().isoformat()
        days.setdefault(day, []).append(row)
    return days


@pytest.fixture(scope="module")
def backfill(
    make_demo_location: Any,
    demo_sandbox_server: SandboxServer,
    start_process: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Backfill:
    location = make_demo_location(tmp_path_factory.mktemp("web") / "dagster_home")
    with (location.home / "dagster.yaml").open("a") as config:
        config.write(QUEUE_EVERY_SECOND)
    today = datetime.now(UTC).date()
    partitions = [(today - timedelta(days=n)).isoformat() for n in (2, 1)]
    by_day = accounts_by_day(location)
    assert all(row["id"] for day in partitions for row in by_day[day])  # no blocked check
    bin_dir = Path(sys.executable).parent
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    location_args = ["-m", "pendo_assets.definitions"]

    webserver = start_process(
        "webserver",
        [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *location_args],
        location.env,
    )
    server_info, locations = wait_until_serving(url, webserver)
    launched = graphql(
        url, LAUNCH, params={"partitionNames": partitions, "assetSelection": ASSETS}
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    daemon = start_process(
        "daemon", [str(bin_dir / "dagster-daemon"), "run", *location_args], location.env
    )
    done = wait_for_runs(url, launched["backfillId"], len(partitions), daemon)
    materializations = {
        prefix: graphql(url, MATERIALIZATIONS, path=[prefix, SYNC], partitions=partitions)[
            "assetOrError"
        ]["assetMaterializations"]
        for prefix in ("pendo", "warehouse")
    }
    return Backfill(
        location,
        partitions,
        server_info,
        locations,
        launched["backfillId"],
        done,
        materializations,
        demo_sandbox_server.state(requests=False),
    )


def entries(materialization: dict[str, Any]) -> dict[str, Any]:
    values = {}
    for entry in materialization["metadataEntries"]:
        for field in ("intValue", "floatValue", "mdStr"):
            if field in entry:
                values[entry["label"]] = entry[field]
    return values


def by_partition(materializations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["partition"]: m for m in materializations}


def test_webserver_answers_server_info_with_the_installed_dagster(backfill: Backfill) -> None:
    assert backfill.server_info == {
        "dagster_webserver_version": dg.__version__,
        "dagster_version": dg.__version__,
        "dagster_graphql_version": dg.__version__,
    }


def test_webserver_loads_the_code_location(backfill: Backfill) -> None:
    assert backfill.locations == [
        {
            "name": "pendo_assets.definitions",
            "loadStatus": "LOADED",
            "locationOrLoadError": {"__typename": "RepositoryLocation"},
        }
    ]


def test_backfill_records_its_partitions_and_assets(backfill: Backfill) -> None:
    assert backfill.backfill["partitionNames"] == backfill.partitions
    assert sorted(a["path"] for a in backfill.backfill["assetSelection"]) == [
        ["pendo", SYNC],
        ["warehouse", SYNC],
    ]


def test_backfill_runs_one_successful_run_per_partition(backfill: Backfill) -> None:
    runs = backfill.backfill["runs"]
    tags = [{t["key"]: t["value"] for t in run["tags"]} for run in runs]

    assert sorted(t["dagster/partition"] for t in tags) == backfill.partitions
    assert {t["dagster/backfill"] for t in tags} == {backfill.backfill_id}
    assert [run["status"] for run in runs] == ["SUCCESS", "SUCCESS"]


def test_both_partitions_of_both_assets_are_materialized_by_the_backfills_runs(
    backfill: Backfill,
) -> None:
    run_ids = {run["runId"] for run in backfill.backfill["runs"]}

    for prefix in ("pendo", "warehouse"):
        materializations = backfill.materializations[prefix]
        assert sorted(m["partition"] for m in materializations) == backfill.partitions
        assert {m["runId"] for m in materializations} == run_ids


def test_each_partitions_pendo_materialization_counts_the_accounts_of_its_day(
    backfill: Backfill,
) -> None:
    by_day = accounts_by_day(backfill.location)
    pendo = by_partition(backfill.materializations["pendo"])

    for partition in backfill.partitions:
        metadata = entries(pendo[partition])
        rows = len(by_day[partition])
        assert {k: metadata[k] for k in ("dagster/row_count", "sent", "failed", "skipped")} == {
            "dagster/row_count": rows,
            "sent": rows,
            "failed": 0,
            "skipped": 0,
        }
        assert metadata["failures"] == "No failed rows."


def test_the_sandbox_holds_the_accounts_of_both_days(backfill: Backfill) -> None:
    by_day = accounts_by_day(backfill.location)
    expected = {
        row["id"]: {
            "custom": {"name": row["name"], "tier": row["tier"], "arr": row["arr"]},
            "agent": {},
        }
        for day in backfill.partitions
        for row in by_day[day]
    }

    assert backfill.sandbox_state["metadata"]["account"] == expected
    assert backfill.sandbox_state["metadata"]["visitor"] == {}
