"""Choosing where sync steps execute: `PENDO_EXECUTOR` for the env-var code location, and
`build_pendo_definitions(executor=...)` for Python users."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster_celery.cli import get_validated_config

from pendo_assets.defs.database_resources import SyncStateResource, WarehouseResource
from pendo_assets.defs.executors import (
    ExecutorConfigError,
    celery_executor_config,
    celery_worker_config,
    executor_from_env,
    pendo_celery_executor,
)
from pendo_assets.defs.factory import build_pendo_definitions
from pendo_assets.defs.resources import PendoResource
from pendo_assets.sync.spec import SourceSpec, SyncSpec

STATE_ON_POSTGRES = "postgresql+psycopg://sync@db-host:5432/pendo_state"
BROKER = "pyamqp://guest:made-up-password@broker-host:5672//"


def resolved(executor: dg.ExecutorDefinition) -> dict[str, Any]:
    """The config the executor runs with, env vars read now."""
    result = executor.config_schema.resolve_config({})
    assert result.success, result.errors
    return result.value["config"]


def visitors_spec() -> SyncSpec:
    return SyncSpec(
        name="visitors",
        object_type="visitor_metadata",
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "plan": "plan"},
    )


# -- PENDO_EXECUTOR --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "multiprocess", " MultiProcess "])
def test_unset_or_multiprocess_keeps_dagsters_default_executor(value: str | None) -> None:
    env = {} if value is None else {"PENDO_EXECUTOR": value}

    assert executor_from_env(env) is None


def test_in_process_runs_every_step_in_the_run_process() -> None:
    assert executor_from_env({"PENDO_EXECUTOR": "in_process"}) is dg.in_process_executor


def test_celery_reads_broker_and_backend_from_their_variables_when_the_run_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "PENDO_EXECUTOR": "celery",
        "PENDO_CELERY_BROKER": BROKER,
        "PENDO_CELERY_BACKEND": "redis://cache-host:6379/1",
        "PENDO_CELERY_QUEUE": "pendo",
    }
    executor = executor_from_env(env)
    assert executor is not None
    monkeypatch.setenv("PENDO_CELERY_BROKER", BROKER)
    monkeypatch.setenv("PENDO_CELERY_BACKEND", "redis://cache-host:6379/1")

    assert executor.name == "celery"
    assert resolved(executor)["broker"] == BROKER
    assert resolved(executor)["backend"] == "redis://cache-host:6379/1"
    assert resolved(executor)["config_source"]["task_default_queue"] == "pendo"


def test_celery_without_variables_uses_dagster_celerys_defaults() -> None:
    executor = executor_from_env({"PENDO_EXECUTOR": "celery"})
    assert executor is not None

    config = resolved(executor)

    assert "broker" not in config  # dagster-celery's default: RabbitMQ on localhost
    assert config["backend"] == "rpc://"
    assert config["config_source"]["task_default_queue"] == "dagster"


def test_a_celery_step_is_acknowledged_only_when_done_so_a_lost_worker_hands_it_back() -> None:
    source = resolved(pendo_celery_executor())["config_source"]

    assert source["task_acks_late"] is True
    assert source["task_reject_on_worker_lost"] is True


def test_an_unknown_executor_is_refused_with_the_choices() -> None:
    with pytest.raises(ExecutorConfigError) as refused:
        executor_from_env({"PENDO_EXECUTOR": "kubernetes"})

    assert str(refused.value) == (
        "PENDO_EXECUTOR='kubernetes' is not an executor this code location knows; "
        "expected one of multiprocess, in_process, celery"
    )


def test_celery_without_dagster_celery_installed_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dagster_celery", None)  # import fails as if absent

    with pytest.raises(ExecutorConfigError, match=r"pendo-assets\[distributed\]"):
        executor_from_env({"PENDO_EXECUTOR": "celery"})


# -- workers agree with the executor -----------------------------------------------------------


def test_the_worker_config_file_is_the_executors_config_and_dagster_celery_accepts_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(celery_worker_config(BROKER, "rpc://", "pendo")))

    validated = get_validated_config(str(path))

    assert validated["broker"] == BROKER
    assert (
        validated["config_source"]
        == celery_executor_config(BROKER, "rpc://", "pendo")["config_source"]
    )


# -- the factory and the code location -----------------------------------------------------------


def resources(state_url: str) -> dict[str, Any]:
    return {
        "pendo": PendoResource(integration_key="made-up-key"),
        "warehouse": WarehouseResource(url="sqlite:///warehouse.db"),
        "sync_state": SyncStateResource(url=state_url),
    }


def test_the_factory_runs_every_job_on_the_executor_it_is_given() -> None:
    defs = build_pendo_definitions(
        [visitors_spec()],
        start_date=date(2026, 11, 1),
        resources=resources(STATE_ON_POSTGRES),
        executor=pendo_celery_executor(broker=BROKER),
    )

    assert defs.resolve_job_def("visitors_sync").executor_def.name == "celery"
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "celery"


def test_the_factory_without_an_executor_keeps_dagsters_default() -> None:
    defs = build_pendo_definitions(
        [visitors_spec()],
        start_date=date(2026, 11, 1),
        resources=resources("sqlite:///state.db"),
    )

    assert defs.resolve_job_def("visitors_sync").executor_def is dg.multi_or_in_process_executor


def load_code_location(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """Import `pendo_assets.definitions` in a fresh interpreter with only these PENDO_ variables;
    print the executor of a sync job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PENDO_", "DAGSTER_"))}
    env.update({"DAGSTER_HOME": str(tmp_path), **variables})
    script = (
        "from pendo_assets.definitions import defs\n"
        "print(defs.resolve_job_def('visitor_metadata_sync').executor_def.name)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_code_location_sends_steps_to_celery_when_pendo_executor_says_so(
    tmp_path: Path,
) -> None:
    loaded = load_code_location(
        tmp_path,
        PENDO_EXECUTOR="celery",
        PENDO_CELERY_BROKER=BROKER,
        PENDO_STATE_URL=STATE_ON_POSTGRES,
    )

    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "celery"
    assert "made-up-password" not in loaded.stdout + loaded.stderr
