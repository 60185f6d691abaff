"""What the Dagster instance recorded about the demo's runs: when they ran, where their steps
ran, what they reported."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import dagster as dg

from pendo_assets.defs.run_overlap import PARTITION_TAG

CELERY_WORKER_KEY = "Celery worker"  # what dagster-celery's task names the worker in its event
FINISHED = frozenset(
    {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
)


class RunsTimedOut(RuntimeError):
    """Runs were still unfinished when the demo's time ran out."""


def job_runs(instance: dg.DagsterInstance, job_names: Iterable[str]) -> list[dg.RunRecord]:
    records: list[dg.RunRecord] = []
    for name in job_names:
        records += instance.get_run_records(filters=dg.RunsFilter(job_name=name))
    return records


def wait_for_runs(
    instance: dg.DagsterInstance,
    job_names: Sequence[str],
    expected: int,
    timeout: float,
    on_tick: Callable[[list[dg.RunRecord]], None] | None = None,
) -> list[dg.RunRecord]:
    """Block until `expected` runs of the jobs exist and all have finished."""
    deadline = time.monotonic() + timeout
    while True:
        records = job_runs(instance, job_names)
        if on_tick is not None:
            on_tick(records)
        if len(records) >= expected and all(r.dagster_run.status in FINISHED for r in records):
            return records
        if time.monotonic() > deadline:
            statuses = Counter(r.dagster_run.status.value for r in records)
            raise RunsTimedOut(f"{len(records)}/{expected} runs after {timeout:.0f}s: {statuses}")
        time.sleep(1.0)


def run_intervals(records: Iterable[dg.RunRecord]) -> list[tuple[float, float]]:
    return [(r.start_time, r.end_time) for r in records if r.start_time and r.end_time]


@dataclass(frozen=True)
class StepExecution:
    """One attempt at a step on a Celery worker: from the worker's `Executing steps` event to
    the step's success or failure (None while it had none)."""

    run_id: str
    step_key: str
    worker: str
    started: float
    ended: float | None


def step_executions(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> list[StepExecution]:
    """Every attempt of every step of the runs, with the Celery worker that ran it."""
    executions: list[StepExecution] = []
    for run_id in run_ids:
        open_steps: dict[str, tuple[str, float]] = {}
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or entry.step_key is None:
                continue
            if event.event_type == dg.DagsterEventType.ENGINE_EVENT:
                metadata = event.engine_event_data.metadata or {}
                worker = metadata.get(CELERY_WORKER_KEY)
                if worker is not None:
                    previous = open_steps.pop(entry.step_key, None)
                    if previous is not None:  # the earlier attempt never finished: lost
                        executions.append(
                            StepExecution(run_id, entry.step_key, *previous, ended=None)
                        )
                    open_steps[entry.step_key] = (str(worker.value), entry.timestamp)
            elif event.event_type in (
                dg.DagsterEventType.STEP_SUCCESS,
                dg.DagsterEventType.STEP_FAILURE,
            ):
                started = open_steps.pop(entry.step_key, None)
                if started is not None:
                    executions.append(
                        StepExecution(run_id, entry.step_key, *started, ended=entry.timestamp)
                    )
        executions += [
            StepExecution(run_id, key, worker, started, None)
            for key, (worker, started) in open_steps.items()
        ]
    return executions


def failed_partitions(records: Iterable[dg.RunRecord]) -> dict[str, list[str]]:
    """Per job, the partitions whose every run failed or was canceled."""
    succeeded: set[tuple[str, str]] = set()
    failed: set[tuple[str, str]] = set()
    for record in records:
        run = record.dagster_run
        key = (run.job_name, run.tags.get(PARTITION_TAG, ""))
        (succeeded if run.status == dg.DagsterRunStatus.SUCCESS else failed).add(key)
    by_job: dict[str, list[str]] = {}
    for job, partition in sorted(failed - succeeded):
        by_job.setdefault(job, []).append(partition)
    return by_job


def reported_total(instance: dg.DagsterInstance, asset_key: dg.AssetKey, field: str) -> int:
    """The sum of a count (e.g. `in_doubt`) over every materialization of the asset."""
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key), limit=10_000
    )
    total = 0
    for record in result.records:
        value = (
            record.asset_materialization.metadata.get(field)
            if record.asset_materialization
            else None
        )
        total += int(value.value) if value is not None else 0  # type: ignore[arg-type]
    return total
