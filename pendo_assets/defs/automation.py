"""Per sync: a job, and a daily schedule for the UTC day that just ended.

The warehouse-change sensor is in `change_sensor`, the retry sensor in `retry_sensor`.
"""

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:  # what define_asset_job returns; dagster does not export the name
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

from pendo_assets.sync.spec import SyncSpec

from .run_overlap import sync_partition_tags
from .sync_assets import SyncKeys, default_keys

SCHEDULE_MINUTE_AFTER_MIDNIGHT = 15


def job_name(spec: SyncSpec) -> str:
    return f"{spec.name}_sync"


def build_job(
    spec: SyncSpec,
    partitions_def: dg.PartitionsDefinition | None = None,
    keys: SyncKeys | None = None,
) -> "UnresolvedAssetJobDefinition":
    """Both assets of the sync. With `partitions_def`, every run of the job for a partition
    (schedule, sensors, `dagster job backfill`, the Launchpad) carries the sync-partition tag,
    so the run queue's rule keeps two runs of one sync partition apart."""
    config = (
        dg.PartitionedConfig(
            partitions_def=partitions_def,
            run_config_for_partition_key_fn=lambda _key: {},
            tags_for_partition_key_fn=lambda key: sync_partition_tags(spec.name, key),
        )
        if partitions_def is not None
        else None
    )
    return dg.define_asset_job(
        name=job_name(spec),
        selection=dg.AssetSelection.assets(*(keys or default_keys(spec))),
        config=config,
        description=f"Read one day of `{spec.name}` from the warehouse and push it to Pendo.",
    )


def build_schedule(
    spec: SyncSpec,
    job: "UnresolvedAssetJobDefinition",
    partitions_def: dg.TimeWindowPartitionsDefinition,
) -> dg.ScheduleDefinition:
    """`<job>_daily`: shortly after midnight UTC, the day that just ended (the job's last
    complete partition), tagged like the sensors' runs so the run queue starts one run of a
    sync partition at a time."""

    @dg.schedule(
        name=f"{job.name}_daily",
        job=job,
        cron_schedule=f"{SCHEDULE_MINUTE_AFTER_MIDNIGHT} 0 * * *",
        execution_timezone="UTC",
        description=f"Yesterday's partition (UTC) of `{spec.name}`, at 00:"
        f"{SCHEDULE_MINUTE_AFTER_MIDNIGHT:02d} UTC.",
    )
    def daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        tick = context.scheduled_execution_time or datetime.now(UTC)
        with dg.partition_loading_context(effective_dt=tick):
            partition = partitions_def.get_last_partition_key()
        if partition is None:
            return dg.SkipReason(f"no partition of sync {spec.name!r} has ended yet")
        return dg.RunRequest(
            partition_key=partition,
            run_key=partition,
            tags=sync_partition_tags(spec.name, partition),
        )

    return daily
