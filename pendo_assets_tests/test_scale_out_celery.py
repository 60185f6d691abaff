"""Proven on a distributed executor: backfills of 8 event and 8 metadata partitions on two
Celery workers (separate processes, the local RabbitMQ), the daemon and the instance on the
local PostgreSQL, under one cap, measured at the sandbox (`python -m pendo_assets.scale_demo`).

Each mode runs the demo once (a few minutes) as its own process and reads its JSON report;
every test below checks one number of the issue on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pendo_assets.scale_demo.databases import drop_database
from pendo_assets.scale_demo.processes import GROUPS_FILE
from pendo_assets.scale_demo.run import DATABASES_FILE

REPO_ROOT = Path(__file__).resolve().parents[1]
RABBITMQ = ("127.0.0.1", 5672)
DEMO_TIMEOUT_SECONDS = 1200

pytestmark = [pytest.mark.postgres, pytest.mark.scale]


def require_rabbitmq() -> None:
    """Skip, loudly, when RabbitMQ does not answer; under CI=true fail instead."""
    try:
        socket.create_connection(RABBITMQ, timeout=3).close()
        return
    except OSError as error:
        reason = (
            f"RabbitMQ NOT REACHABLE at {RABBITMQ[0]}:{RABBITMQ[1]} ({error}); the Celery "
            "scale-out tests did NOT run"
        )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def stop_demo(process: subprocess.Popen[bytes], workdir: Path, postgres_url: str) -> None:
    """SIGTERM lets the demo stop its processes and drop its databases itself; if it cannot,
    stop every process group it recorded and drop every database it recorded."""
    if process.poll() is not None:
        return  # it ended by itself, having cleaned up
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(90)
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
    groups = workdir / "logs" / GROUPS_FILE
    for group in groups.read_text().split() if groups.exists() else []:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(group), signal.SIGKILL)
    databases = workdir / DATABASES_FILE
    for name in databases.read_text().split() if databases.exists() else []:
        drop_database(postgres_url, name)


def run_demo(postgres_url: str, workdir: Path, *flags: str) -> dict[str, Any]:
    """The demo as its own process (its own session: everything it starts goes with it)."""
    require_rabbitmq()
    report = workdir / "report.json"
    output = workdir / "demo.out"
    command = [sys.executable, "-m", "pendo_assets.scale_demo", "--pg", postgres_url,
               "--workdir", str(workdir), "--report", str(report), *flags]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PENDO_", "DAGSTER_"))}
    with output.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            process.wait(DEMO_TIMEOUT_SECONDS)
        finally:
            stop_demo(process, workdir, postgres_url)
    text = output.read_text(errors="replace")
    print(text)  # the figures, for the test log
    assert report.exists(), f"the demo wrote no report (exit {process.returncode}):\n{text}"
    return {**json.loads(report.read_text()), "output": text}


@pytest.fixture(scope="module")
def backfill(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield run_demo(postgres_url, tmp_path_factory.mktemp("scale_backfill"))


@pytest.fixture(scope="module")
def worker_kill(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # Half the events a day: this mode checks what a lost worker costs, not the rate.
    workdir = tmp_path_factory.mktemp("scale_kill")
    yield run_demo(postgres_url, workdir, "--kill-worker", "--events-per-day", "160")


def figures(report: dict[str, Any]) -> str:
    return report["output"].split("== scale demo", 1)[-1]


# -- a backfill on Celery workers under one cap ----------------------------------------------


def test_every_event_lands_exactly_once(backfill: dict[str, Any]) -> None:
    assert backfill["events"] == {
        "expected": 2560,
        "landed_once": 2560,
        "missing": 0,
        "duplicates": 0,
        "unexpected": 0,
    }, figures(backfill)


def test_every_metadata_record_lands_exactly_once(backfill: dict[str, Any]) -> None:
    assert backfill["metadata"] == {
        "expected": 1600,
        "landed_once": 1600,
        "missing": 0,
        "duplicates": 0,
        "unexpected": 0,
    }, figures(backfill)


def test_sixteen_runs_succeed_at_least_four_at_once(backfill: dict[str, Any]) -> None:
    assert backfill["run_statuses"] == {"SUCCESS": 16}, figures(backfill)
    assert backfill["runs_at_once"] >= 4, figures(backfill)


def test_steps_run_on_both_celery_workers(backfill: dict[str, Any]) -> None:
    assert sorted(name.split("-")[0] for name in backfill["steps_by_worker"]) == [
        "scale1",
        "scale2",
    ], figures(backfill)


def test_the_busiest_second_of_each_destination_stays_within_5_percent_of_the_cap(
    backfill: dict[str, Any],
) -> None:
    """The cap is per destination: the track secret's and the integration key's."""
    by_destination = backfill["busiest_second_by_credential"]
    assert len(by_destination) == 2, figures(backfill)
    assert max(by_destination.values()) <= 40 * 1.05, figures(backfill)


def test_no_event_is_refused_for_pacing(backfill: dict[str, Any]) -> None:
    assert backfill["pacing_429"] == 0, figures(backfill)


def test_all_runs_together_reach_90_percent_of_the_cap(backfill: dict[str, Any]) -> None:
    assert backfill["combined_rate"] >= 40 * 0.90, figures(backfill)


# -- a worker killed mid-backfill ------------------------------------------------------------


def test_the_worker_is_killed_while_it_runs_event_steps(worker_kill: dict[str, Any]) -> None:
    lost = worker_kill["steps_lost_with_worker"]

    assert any(step.endswith(":pendo__scale_events") for step in lost), figures(worker_kill)


def test_every_partition_ends_with_a_successful_run(worker_kill: dict[str, Any]) -> None:
    assert worker_kill["partitions_succeeded"], figures(worker_kill)


def test_a_killed_worker_loses_no_record(worker_kill: dict[str, Any]) -> None:
    assert worker_kill["events"]["missing"] == 0, figures(worker_kill)
    assert worker_kill["events"]["unexpected"] == 0, figures(worker_kill)
    assert worker_kill["metadata"]["missing"] == 0, figures(worker_kill)
    assert worker_kill["metadata"]["unexpected"] == 0, figures(worker_kill)


def test_event_duplicates_stay_within_the_in_doubt_bound(worker_kill: dict[str, Any]) -> None:
    lost_event_steps = sum(
        1 for step in worker_kill["steps_lost_with_worker"] if step.endswith(":pendo__scale_events")
    )
    bound = worker_kill["in_doubt_reported"] + lost_event_steps * (16 + 50)

    assert worker_kill["duplicate_bound"] == bound
    assert worker_kill["events"]["duplicates"] <= bound, figures(worker_kill)
