"""`deploy/dagster.yaml`, the production instance, loaded as a real DagsterInstance on a fresh
PostgreSQL database: what a deployment relies on it for."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
import yaml
from dagster._core.test_utils import freeze_time
from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from pendo_assets.scale_demo.databases import fresh_database, with_driver

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY_FILE = REPO_ROOT / "deploy" / "dagster.yaml"
POOL = "pendo_api"

pytestmark = pytest.mark.postgres


@dataclass
class DeployHome:
    """A DAGSTER_HOME holding a copy of deploy/dagster.yaml, and the environment that points
    it at a fresh database."""

    path: Path
    env: dict[str, str]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        dagster = str(Path(sys.executable).parent / "dagster")
        return subprocess.run(
            [dagster, *args], env=self.env, capture_output=True, text=True, check=True
        )


@pytest.fixture
def deploy_home(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DeployHome]:
    shutil.copyfile(DEPLOY_FILE, tmp_path / "dagster.yaml")
    with fresh_database(postgres_url, "test_deploy") as database:
        url = with_driver(database, "postgresql+psycopg2").render_as_string(hide_password=False)
        monkeypatch.setenv("DAGSTER_PG_URL", url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
        env.update({"DAGSTER_HOME": str(tmp_path), "DAGSTER_PG_URL": url})
        yield DeployHome(tmp_path, env)


@pytest.fixture
def instance(deploy_home: DeployHome) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(deploy_home.path)) as instance:
        yield instance


def add_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    return instance.add_run(
        dg.DagsterRun(job_name="visitor_metadata_sync", run_id=str(uuid.uuid4()), status=status)
    )


def run_monitoring_slot_pass(instance: dg.DagsterInstance) -> None:
    """One pass of the daemon's run-monitoring loop that frees slots of ended runs."""
    process_context = SimpleNamespace(instance=instance)  # all that loop reads from it
    logger = logging.getLogger("test_deploy_instance")
    list(execute_concurrency_slots_iteration(process_context, logger))  # type: ignore[arg-type]


def test_the_instance_loads_without_a_single_warning(deploy_home: DeployHome) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with dg.DagsterInstance.from_config(str(deploy_home.path)) as instance:
            assert instance.get_ref().settings["telemetry"] == {"enabled": False}


def test_runs_events_schedules_and_pool_slots_live_in_postgres(
    instance: dg.DagsterInstance,
) -> None:
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert instance.event_log_storage.supports_global_concurrency_limits


def test_run_events_are_stored_through_the_documented_driver(
    instance: dg.DagsterInstance,
) -> None:
    # With SQLAlchemy 2.1 a bare postgresql:// URL means psycopg 3, on which dagster-postgres
    # fails to store run events; the documented postgresql+psycopg2:// stores them.
    run = add_run(instance, dg.DagsterRunStatus.STARTED)

    instance.report_engine_event("probe", run)

    messages = [entry.dagster_event.message for entry in instance.all_logs(run.run_id)]
    assert messages == ["probe"]


def test_runs_wait_in_the_queue_for_the_daemon(instance: dg.DagsterInstance) -> None:
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"


def test_the_queue_starts_one_run_per_sync_partition_like_the_repository_instance(
    instance: dg.DagsterInstance,
) -> None:
    repository_rule = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())["concurrency"][
        "runs"
    ]["tag_concurrency_limits"]
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    assert (
        queue.tag_concurrency_limits
        == repository_rule
        == [
            {
                "key": "pendo_assets/sync_partition",
                "value": {"applyLimitPerUniqueValue": True},
                "limit": 1,
            }
        ]
    )
    assert queue.max_concurrent_runs == 10


def test_run_monitoring_is_on_and_frees_pool_slots_two_minutes_after_a_run_ends(
    instance: dg.DagsterInstance,
) -> None:
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 120


def test_a_dead_run_gives_its_pool_slot_back_once_two_minutes_have_passed(
    instance: dg.DagsterInstance,
) -> None:
    storage = instance.event_log_storage
    storage.set_concurrency_slots(POOL, 1)
    dead = add_run(instance, dg.DagsterRunStatus.STARTED)
    assert storage.claim_concurrency_slot(POOL, dead.run_id, "pendo__visitors").is_claimed
    instance.report_run_failed(dead)  # its process died holding the slot
    waiting = add_run(instance, dg.DagsterRunStatus.STARTED)
    assert not storage.claim_concurrency_slot(POOL, waiting.run_id, "pendo__visitors").is_claimed
    now = datetime.now(UTC)

    with freeze_time(now + timedelta(seconds=60)):
        run_monitoring_slot_pass(instance)
    held_after_a_minute = storage.get_concurrency_info(POOL).active_slot_count
    with freeze_time(now + timedelta(seconds=125)):
        run_monitoring_slot_pass(instance)

    assert held_after_a_minute == 1
    assert storage.get_concurrency_info(POOL).active_slot_count == 0
    assert storage.claim_concurrency_slot(POOL, waiting.run_id, "pendo__visitors").is_claimed


def test_the_pool_limit_set_with_the_cli_is_what_every_step_reads(
    deploy_home: DeployHome, instance: dg.DagsterInstance
) -> None:
    deploy_home.cli("instance", "concurrency", "set", POOL, "4")

    assert instance.event_log_storage.get_concurrency_info(POOL).slot_count == 4


def test_four_sync_steps_hold_the_pendo_api_pool_and_a_fifth_waits(
    deploy_home: DeployHome, instance: dg.DagsterInstance
) -> None:
    deploy_home.cli("instance", "concurrency", "set", POOL, "4")
    runs = [add_run(instance, dg.DagsterRunStatus.STARTED) for _ in range(5)]

    claims = [
        instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, "pendo__events")
        for run in runs
    ]

    assert [claim.is_claimed for claim in claims] == [True, True, True, True, False]


def test_an_unset_pool_takes_the_default_limit_of_two(instance: dg.DagsterInstance) -> None:
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 2
