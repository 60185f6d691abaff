"""Per sync: a job, a daily schedule for yesterday's partition, a sensor for warehouse changes."""

from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:  # what define_asset_job returns; dagster does not export the name
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

from pendo_assets.sync.spec import SyncSpec
from pendo_assets.sync.warehouse import WarehouseError, changed_partitions

from .database_resources import WarehouseResource
from .sync_assets import pendo_key, warehouse_key

SCHEDULE_MINUTE_AFTER_MIDNIGHT = 15
SENSOR_INTERVAL_SECONDS = 300


def job_name(spec: SyncSpec) -> str:
    return f"{spec.name}_sync"


def build_job(spec: SyncSpec) -> "UnresolvedAssetJobDefinition":
    """Both assets of the sync; partitioning comes from them."""
    return dg.define_asset_job(
        name=job_name(spec),
        selection=dg.AssetSelection.assets(warehouse_key(spec), pendo_key(spec)),
        description=f"Read one day of `{spec.name}` from the warehouse and push it to Pendo.",
    )


def build_schedule(job: "UnresolvedAssetJobDefinition") -> Any:
    """Shortly after midnight UTC, the day that just ended (the job's last complete partition)."""
    return dg.build_schedule_from_partitioned_job(
        job,
        name=f"{job.name}_daily",
        hour_of_day=0,
        minute_of_hour=SCHEDULE_MINUTE_AFTER_MIDNIGHT,
    )


def build_sensor(
    spec: SyncSpec,
    job: "UnresolvedAssetJobDefinition",
    partitions_def: dg.TimeWindowPartitionsDefinition,
) -> dg.SensorDefinition:
    """Requests the partitions that new or changed warehouse rows fall in.

    The cursor is the largest partition-column value seen among rows of days whose partition
    exists. Rows of today (no partition until the day is over) are left for a later
    evaluation, so the cursor only moves forward and each run key (partition and cursor) is
    requested once.
    """

    @dg.sensor(
        name=f"{spec.name}_warehouse_changes",
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        description=f"New or changed rows in the warehouse source of `{spec.name}`.",
    )
    def warehouse_changes(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        last = partitions_def.get_last_partition_key()
        if last is None:
            return dg.SkipReason("no partition exists yet")
        _, partitions_end = partitions_def.time_window_for_partition_key(last)
        try:
            keys, cursor = changed_partitions(
                warehouse.get_engine(), spec.source, context.cursor, before=partitions_end
            )
        except WarehouseError as error:
            return dg.SkipReason(f"cannot read the warehouse ({warehouse.display_url}): {error}")
        if not keys:
            return dg.SkipReason(f"no rows beyond cursor {context.cursor!r}")
        first = partitions_def.get_first_partition_key()
        ready = [k for k in keys if first is not None and k >= first]
        requests = [
            dg.RunRequest(partition_key=key, run_key=f"{spec.name}:{key}:{cursor}") for key in ready
        ]
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return warehouse_changes
