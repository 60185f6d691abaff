"""SQLite sync state with steps or runs on other machines: refused, or warned about, at load."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pendo_assets.defs.database_resources import SyncStateResource
from pendo_assets.defs.deployment_check import (
    DeploymentError,
    DeploymentWarning,
    check_deployment,
    configured_run_launcher,
)
from pendo_assets.defs.executors import pendo_celery_executor
from pendo_assets.defs.factory import build_pendo_definitions
from pendo_assets.sync.spec import SourceSpec, SyncSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
SQLITE_STATE = "sqlite:////var/lib/pendo/pendo_sync_state.db"
POSTGRES_STATE = "postgresql+psycopg://sync@db-host:5432/pendo_state"
FIX = "set PENDO_STATE_URL (or the sync_state resource's url) to a PostgreSQL URL"


def named_executor(name: str) -> dg.ExecutorDefinition:
    """An executor registered under `name`, as dagster-k8s or dagster-docker register theirs."""
    return dg.ExecutorDefinition(name=name, executor_creation_fn=lambda _context: None)  # type: ignore[arg-type,return-value]


def home_with_launcher(tmp_path: Path, module: str, name: str) -> Path:
    config = {"run_launcher": {"module": module, "class": name}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


# -- executors ---------------------------------------------------------------------------------


def test_sqlite_state_with_the_celery_executor_is_refused_with_the_fix() -> None:
    with pytest.raises(DeploymentError) as refused:
        check_deployment(executor=pendo_celery_executor(), state_url=SQLITE_STATE)

    message = str(refused.value)
    assert message.startswith(
        "the sync state is SQLite, a file on one machine, but executor 'celery' runs sync steps "
        "on other machines"
    )
    assert FIX in message
    assert "/var/lib/pendo" not in message  # the URL itself is not repeated


@pytest.mark.parametrize("name", ["k8s", "docker", "celery-k8s", "celery-docker"])
def test_sqlite_state_with_any_executor_that_leaves_the_host_is_refused(name: str) -> None:
    with pytest.raises(DeploymentError, match=f"executor '{name}'"):
        check_deployment(executor=named_executor(name), state_url="sqlite:///state.db")


def test_postgres_state_with_the_celery_executor_is_accepted(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_deployment(
            executor=pendo_celery_executor(), state_url=POSTGRES_STATE, dagster_home=tmp_path
        )


@pytest.mark.parametrize(
    "executor", [None, dg.multiprocess_executor, dg.in_process_executor], ids=str
)
def test_sqlite_state_with_a_local_executor_is_accepted_silently(
    executor: dg.ExecutorDefinition | None, tmp_path: Path
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_deployment(executor=executor, state_url=SQLITE_STATE, dagster_home=tmp_path)


def test_an_unknown_state_url_is_not_judged(tmp_path: Path) -> None:
    check_deployment(executor=pendo_celery_executor(), state_url=None, dagster_home=tmp_path)


# -- the instance's own storage ----------------------------------------------------------------


def test_celery_with_an_instance_on_sqlite_is_warned_about_with_the_fix(tmp_path: Path) -> None:
    shutil.copyfile(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")  # no storage: SQLite

    with pytest.warns(DeploymentWarning) as warned:
        check_deployment(
            executor=pendo_celery_executor(), state_url=POSTGRES_STATE, dagster_home=tmp_path
        )

    [warning] = warned
    assert str(warning.message) == (
        "executor 'celery' runs steps on other machines, but this instance keeps runs and "
        f"events in SQLite files under {tmp_path}, which they cannot reach. Fix: use "
        "deploy/dagster.yaml (storage on PostgreSQL) as $DAGSTER_HOME/dagster.yaml."
    )


def test_celery_with_the_deploy_instance_is_not_warned_about(tmp_path: Path) -> None:
    shutil.copyfile(REPO_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_deployment(
            executor=pendo_celery_executor(), state_url=POSTGRES_STATE, dagster_home=tmp_path
        )


# -- run launchers -----------------------------------------------------------------------------


def test_sqlite_state_with_a_docker_run_launcher_is_warned_about_with_the_fix(
    tmp_path: Path,
) -> None:
    home = home_with_launcher(tmp_path, "dagster_docker", "DockerRunLauncher")

    with pytest.warns(DeploymentWarning) as warned:
        check_deployment(executor=None, state_url=SQLITE_STATE, dagster_home=home)

    [warning] = warned
    assert "run launcher DockerRunLauncher" in str(warning.message)
    assert FIX in str(warning.message)


def test_sqlite_state_with_the_default_run_launcher_is_not_warned_about(tmp_path: Path) -> None:
    home = home_with_launcher(tmp_path, "dagster", "DefaultRunLauncher")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_deployment(executor=None, state_url=SQLITE_STATE, dagster_home=home)


def test_postgres_state_with_a_kubernetes_run_launcher_is_not_warned_about(
    tmp_path: Path,
) -> None:
    home = home_with_launcher(tmp_path, "dagster_k8s", "K8sRunLauncher")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_deployment(executor=None, state_url=POSTGRES_STATE, dagster_home=home)


def test_the_run_launcher_is_read_from_the_file_without_loading_the_instance(
    tmp_path: Path,
) -> None:
    home = home_with_launcher(tmp_path, "dagster_k8s", "K8sRunLauncher")

    assert configured_run_launcher(home) == "K8sRunLauncher"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dagster.yaml"]  # nothing created


def test_no_instance_file_means_no_run_launcher_to_judge(tmp_path: Path) -> None:
    assert configured_run_launcher(tmp_path) is None
    assert configured_run_launcher(None) is None


# -- where the check runs ----------------------------------------------------------------------


def test_the_factory_refuses_sqlite_state_read_from_an_env_var_with_celery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_STATE_URL", "sqlite:///state.db")
    spec = SyncSpec(
        name="visitors",
        object_type="visitor_metadata",
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "plan": "plan"},
    )

    with pytest.raises(DeploymentError, match="executor 'celery'"):
        build_pendo_definitions(
            [spec],
            start_date=date(2026, 11, 1),
            resources={"sync_state": SyncStateResource(url=dg.EnvVar("MY_STATE_URL"))},
            executor=pendo_celery_executor(),
        )


def test_the_code_location_refuses_to_load_celery_with_the_default_sqlite_state(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PENDO_", "DAGSTER_"))}
    env.update({"DAGSTER_HOME": str(tmp_path), "PENDO_EXECUTOR": "celery"})

    loaded = subprocess.run(
        [sys.executable, "-c", "import pendo_assets.definitions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert loaded.returncode == 1
    assert "DeploymentError: the sync state is SQLite" in loaded.stderr
    assert FIX in loaded.stderr
