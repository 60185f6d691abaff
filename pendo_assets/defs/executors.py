"""Where the steps of a sync run execute: in processes beside the run, or on Celery workers.

`PENDO_EXECUTOR` picks it for the env-var code location; `build_pendo_definitions(executor=...)`
takes any executor definition. dagster-celery is imported only when Celery is chosen, so a
one-machine install never needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

EXECUTOR_ENV = "PENDO_EXECUTOR"
BROKER_ENV = "PENDO_CELERY_BROKER"
BACKEND_ENV = "PENDO_CELERY_BACKEND"
QUEUE_ENV = "PENDO_CELERY_QUEUE"

#: dagster-celery's own defaults: RabbitMQ on localhost, results over RPC, queue `dagster`.
DEFAULT_BACKEND = "rpc://"
DEFAULT_QUEUE = "dagster"

#: What `PENDO_EXECUTOR` accepts; unset means `multiprocess`, Dagster's default.
EXECUTOR_CHOICES = ("multiprocess", "in_process", "celery")


class ExecutorConfigError(ValueError):
    """`PENDO_EXECUTOR` names no executor, or the chosen one is not installed."""


def celery_settings(queue: str = DEFAULT_QUEUE) -> dict[str, Any]:
    """Celery app settings for the executor and, identically, for its workers.

    A step's task is acknowledged only once it has finished (`task_acks_late`), and a task
    whose worker process died is handed back to the broker (`task_reject_on_worker_lost`):
    when a worker machine dies mid-step, the broker gives the step to another worker instead
    of the run waiting for an answer that never comes. The sync's lease and state make the
    second attempt send only what the first did not record. Workers must run with the same
    settings: start them with `dagster-celery worker start -y` on `celery_worker_config()`.
    """
    return {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_default_queue": queue,
    }


def celery_executor_config(
    broker: str | Mapping[str, str] | None = None,
    backend: str | Mapping[str, str] | None = None,
    queue: str = DEFAULT_QUEUE,
) -> dict[str, Any]:
    """The `celery_executor` config block; `{"env": NAME}` keeps a password-bearing URL out
    of the code location (it is read where the run starts)."""
    config: dict[str, Any] = {
        "backend": backend or DEFAULT_BACKEND,
        "config_source": celery_settings(queue),
    }
    if broker:
        config["broker"] = broker
    return config


def celery_worker_config(
    broker: str | None = None, backend: str | None = None, queue: str = DEFAULT_QUEUE
) -> dict[str, Any]:
    """The YAML document `dagster-celery worker start -y FILE` reads: the executor's config,
    so workers and runs agree on broker, backend, queue and acknowledgement."""
    return {"execution": {"config": celery_executor_config(broker, backend, queue)}}


def pendo_celery_executor(
    broker: str | Mapping[str, str] | None = None,
    backend: str | Mapping[str, str] | None = None,
    queue: str = DEFAULT_QUEUE,
) -> dg.ExecutorDefinition:
    """dagster-celery's executor with `celery_settings`; needs `pendo-assets[distributed]`."""
    try:
        from dagster_celery import celery_executor
    except ImportError:
        raise ExecutorConfigError(
            "the Celery executor needs dagster-celery: pip install 'pendo-assets[distributed]'"
        ) from None
    return celery_executor.configured(celery_executor_config(broker, backend, queue))


def executor_from_env(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition | None:
    """The executor `PENDO_EXECUTOR` names; None keeps Dagster's default (multiprocess).

    For `celery`, `PENDO_CELERY_BROKER` (default: RabbitMQ on localhost),
    `PENDO_CELERY_BACKEND` (default `rpc://`) and `PENDO_CELERY_QUEUE` (default `dagster`).
    The broker and backend are passed as `{"env": NAME}`: their values, which may hold a
    password, are never part of the definitions.
    """
    env = os.environ if environ is None else environ
    choice = (env.get(EXECUTOR_ENV) or "multiprocess").strip().lower()
    if choice == "multiprocess":
        return None
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "celery":
        return pendo_celery_executor(
            broker={"env": BROKER_ENV} if env.get(BROKER_ENV) else None,
            backend={"env": BACKEND_ENV} if env.get(BACKEND_ENV) else None,
            queue=env.get(QUEUE_ENV) or DEFAULT_QUEUE,
        )
    raise ExecutorConfigError(
        f"{EXECUTOR_ENV}={choice!r} is not an executor this code location knows; "
        f"expected one of {', '.join(EXECUTOR_CHOICES)}"
    )
