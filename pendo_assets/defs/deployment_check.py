"""Load-time check that the sync state is reachable from every machine that runs a sync step.

SQLite state is a file on one host. A sync step run elsewhere (a Celery, Kubernetes or Docker
step worker, or a run started in its own container) would open its own empty file there: it
would resend what the state already records (track events twice in Pendo) and would not see
another machine's lease on the partition. So SQLite state with an executor that runs steps on
other machines is refused when the code location loads, and with a run launcher that starts
runs elsewhere it is warned about, before anything is sent. An instance on SQLite with such an
executor is warned about too: its steps could not record their events.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa
import yaml

#: Executors whose steps run as processes (or threads) of the run's own process, on its host.
LOCAL_EXECUTOR_NAMES = frozenset({"multiprocess", "in_process", "multi_or_in_process_executor"})
#: Run launchers that start each run on the host of the process that launches it.
LOCAL_RUN_LAUNCHERS = frozenset({"DefaultRunLauncher", "SyncInMemoryRunLauncher"})

STATE_FIX = (
    "set PENDO_STATE_URL (or the sync_state resource's url) to a PostgreSQL URL that every "
    "machine reaches, e.g. postgresql+psycopg://user:password@db-host:5432/pendo_state "
    "(pip install 'pendo-assets[distributed]')"
)


class DeploymentError(ValueError):
    """The definitions would run sync steps where their state cannot follow."""


class DeploymentWarning(UserWarning):
    """The instance may start runs where the sync state cannot follow."""


def is_single_host_state(url: str) -> bool:
    """True for a SQLite URL (the code location's default: a file in DAGSTER_HOME)."""
    try:
        return sa.engine.make_url(url).get_backend_name() == "sqlite"
    except sa.exc.ArgumentError:
        return url.strip().lower().startswith("sqlite")


def executor_name(executor: dg.ExecutorDefinition | dg.Executor | None) -> str:
    """The executor's registered name (`celery`, `k8s`, `docker`, ...); None is Dagster's
    default, which runs steps in processes beside the run."""
    if executor is None:
        return "multi_or_in_process_executor"
    if isinstance(executor, dg.ExecutorDefinition):
        return executor.name
    return {"MultiprocessExecutor": "multiprocess", "InProcessExecutor": "in_process"}.get(
        type(executor).__name__, type(executor).__name__
    )


def _instance_config(dagster_home: str | Path | None) -> dict[str, Any] | None:
    """`$DAGSTER_HOME/dagster.yaml` read as plain YAML, or None without a readable file.

    Loading the instance itself would connect to its storage (and create SQLite files) while
    the code location loads; the file says what is needed.
    """
    if not dagster_home:
        return None
    try:
        config: Any = yaml.safe_load((Path(dagster_home) / "dagster.yaml").read_text("utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return config if isinstance(config, dict) else {}


def configured_run_launcher(dagster_home: str | Path | None) -> str | None:
    """The run launcher class the instance file names; None when there is no file or it
    names none (Dagster's default, DefaultRunLauncher, then applies)."""
    launcher = (_instance_config(dagster_home) or {}).get("run_launcher")
    name = launcher.get("class") if isinstance(launcher, dict) else None
    return str(name) if name else None


def instance_storage_is_shared(dagster_home: str | Path | None) -> bool | None:
    """Whether the instance file keeps runs and events in a database server (PostgreSQL or
    MySQL) rather than SQLite files under DAGSTER_HOME; None when there is no file or the
    storage is a custom class (not judged)."""
    config = _instance_config(dagster_home)
    if config is None:
        return None
    storage = config.get("storage")
    if isinstance(storage, dict) and ({"postgres", "mysql"} & storage.keys()):
        return True
    if isinstance(storage, dict) and "custom" in storage:
        return None
    event_log = config.get("event_log_storage")
    module = str(event_log.get("module", "")) if isinstance(event_log, dict) else ""
    return module.startswith(("dagster_postgres", "dagster_mysql"))


def check_deployment(
    *,
    executor: dg.ExecutorDefinition | dg.Executor | None,
    state_url: str | None,
    dagster_home: str | Path | None = None,
) -> None:
    """Refuse SQLite state with a step executor that leaves the host; warn about it with a
    run launcher that does, and about an instance on SQLite with such an executor.
    `state_url` None (not known at load time) is not judged; `dagster_home` defaults to
    $DAGSTER_HOME."""
    home = dagster_home if dagster_home is not None else os.environ.get("DAGSTER_HOME")
    name = executor_name(executor)
    remote_steps = name not in LOCAL_EXECUTOR_NAMES
    if remote_steps and instance_storage_is_shared(home) is False:
        warnings.warn(
            f"executor {name!r} runs steps on other machines, but this instance keeps runs and "
            f"events in SQLite files under {home}, which they cannot reach. Fix: use "
            "deploy/dagster.yaml (storage on PostgreSQL) as $DAGSTER_HOME/dagster.yaml.",
            DeploymentWarning,
            stacklevel=2,
        )
    if state_url is None or not is_single_host_state(state_url):
        return
    if remote_steps:
        raise DeploymentError(
            f"the sync state is SQLite, a file on one machine, but executor {name!r} runs sync "
            "steps on other machines, where that file is not: each would keep its own state "
            f"and resend what another already sent (track events twice). Fix: {STATE_FIX}."
        )
    launcher = configured_run_launcher(home)
    if launcher is not None and launcher not in LOCAL_RUN_LAUNCHERS:
        warnings.warn(
            f"the sync state is SQLite, a file on one machine, but this instance's run "
            f"launcher {launcher} (in {Path(home or '') / 'dagster.yaml'}) may start runs on "
            "other machines, where each would keep its own state and resend what another "
            f"already sent. Fix: {STATE_FIX}.",
            DeploymentWarning,
            stacklevel=2,
        )
