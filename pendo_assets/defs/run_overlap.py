"""Keeping two runs of one sync partition apart on the Dagster side, cheaply.

Two runs of one partition at once send the same track events twice (review finding A1). The
sync asset takes a lease on the partition in the state database; in front of that, this module
gives the sensors and the schedule two cheaper means:

- every run they request carries the tag `pendo_assets/sync_partition: <sync>:<partition>`, and
  the run queue's tag concurrency rule in `dagster.yaml` starts one such run per value at a time;
- the sensors do not request a partition that a run of the sync already has queued or running.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import dagster as dg

SYNC_PARTITION_TAG = "pendo_assets/sync_partition"
#: Dagster's own tag naming the partition of a run.
PARTITION_TAG = "dagster/partition"
#: Runs that may still read or send: queued, starting, running, or being cancelled.
UNFINISHED_STATUSES: tuple[dg.DagsterRunStatus, ...] = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


def sync_partition_tags(sync_name: str, partition_key: str) -> dict[str, str]:
    """The tag that puts a run under the one-run-per-sync-partition queue rule."""
    return {SYNC_PARTITION_TAG: f"{sync_name}:{partition_key}"}


def partitions_in_flight(
    instance: dg.DagsterInstance,
    *,
    job_name: str,
    asset_keys: Collection[dg.AssetKey],
    partition_keys: Iterable[str],
) -> set[str]:
    """Which of `partition_keys` an unfinished run already covers: a run of the sync's job, or
    any run (a UI launch, a backfill) that materializes one of the sync's assets."""
    keys = sorted(set(partition_keys))
    if not keys:
        return set()
    runs = instance.get_runs(
        filters=dg.RunsFilter(tags={PARTITION_TAG: keys}, statuses=list(UNFINISHED_STATUSES))
    )
    wanted = set(asset_keys)
    return {
        run.tags[PARTITION_TAG]
        for run in runs
        if run.job_name == job_name or (run.asset_selection and run.asset_selection & wanted)
    }
