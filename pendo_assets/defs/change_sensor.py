"""Per sync: a sensor that requests the partitions whose warehouse rows are new or changed.

A high-water mark alone (`column > cursor`) misses rows that become visible after the sensor
has moved past their partition value: long ETL transactions committing older `updated_at`
values, late events partitioned by event time. So every evaluation reads a window again: the
days from `sensor_lookback_days` before the greatest partition value seen (or, the first time,
before the end of the last partition) up to the start of today, which has no partition yet.
Each day in the window gets a fingerprint of its rows' partition values; a day whose
fingerprint differs from the one last requested is requested again. Change detection in the
sync makes a run over an unchanged partition cheap, so the window costs little.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:  # what define_asset_job returns; dagster does not export the name
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

from pendo_assets.sync.source.warehouse import RecentPartitions, WarehouseError, changed_partitions
from pendo_assets.sync.spec import SyncSpec

from .database_resources import WarehouseResource
from .run_overlap import partitions_in_flight, sync_partition_tags
from .sync_assets import SyncKeys, default_keys

SENSOR_INTERVAL_SECONDS = 300


@dataclass
class ChangeCursor:
    """What the last evaluation saw.

    `high_water` is the greatest partition value seen; `since` the first day of its window;
    `fingerprints` each day's fingerprint when it was last requested (or, for a day before the
    window the evaluation before looked at, when it was first seen: old history is not sent).
    """

    high_water: str | None = None
    since: str | None = None
    fingerprints: dict[str, str] = field(default_factory=dict)

    def dump(self) -> str:
        return json.dumps(
            {"high_water": self.high_water, "since": self.since, "fingerprints": self.fingerprints},
            sort_keys=True,
        )

    @classmethod
    def load(cls, cursor: str | None) -> ChangeCursor:
        """A cursor of this sensor; an older release's bare high-water mark has no fingerprints,
        so each day in the window is requested once more."""
        if not cursor:
            return cls()
        try:
            data: Any = json.loads(cursor)
        except ValueError:
            data = None
        if not isinstance(data, dict) or "high_water" not in data:
            return cls(high_water=cursor)
        fingerprints = {str(day): str(fp) for day, fp in data.get("fingerprints", {}).items()}
        return cls(data["high_water"], data.get("since"), fingerprints)

    def changed(self, day: str, fingerprint: str) -> bool:
        """Whether a day of the window is to be requested."""
        if self.since is not None and day < self.since:
            return False  # not looked at before: history, left alone like on the first evaluation
        return self.fingerprints.get(day) != fingerprint


def change_sensor_name(spec: SyncSpec) -> str:
    return f"{spec.name}_warehouse_changes"


def build_change_sensor(
    spec: SyncSpec,
    job: UnresolvedAssetJobDefinition,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    keys: SyncKeys | None = None,
) -> dg.SensorDefinition:
    """`<name>_warehouse_changes`: requests each partition whose rows in the window changed.

    The run key is the partition and its fingerprint, so Dagster never starts two runs for the
    same rows, and a late row makes a new key. A partition that a run of the sync has queued or
    running is held back (its fingerprint is not recorded) and requested once that run ended.
    """

    @dg.sensor(
        name=change_sensor_name(spec),
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        description=f"New or changed rows in the warehouse source of `{spec.name}`, within "
        f"{spec.sensor_lookback_days:g} days of the latest.",
    )
    def warehouse_changes(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        last = partitions_def.get_last_partition_key()
        if last is None:
            return dg.SkipReason("no partition exists yet")
        _, partitions_end = partitions_def.time_window_for_partition_key(last)
        previous = ChangeCursor.load(context.cursor)
        try:
            recent = changed_partitions(
                warehouse.get_engine(),
                spec.source,
                previous.high_water,
                before=partitions_end,
                lookback_days=spec.sensor_lookback_days,
            )
        except WarehouseError as error:
            return dg.SkipReason(f"cannot read the warehouse ({warehouse.display_url}): {error}")
        first = partitions_def.get_first_partition_key() or last
        fingerprints = {day: fp for day, fp in recent.fingerprints.items() if day >= first}
        changed = [day for day, fp in fingerprints.items() if previous.changed(day, fp)]
        in_flight: set[str] = set()
        if changed:
            in_flight = partitions_in_flight(
                context.instance,
                job_name=job.name,
                asset_keys=keys or default_keys(spec),
                partition_keys=changed,
            )
        return _result(spec, context, previous, recent, fingerprints, changed, in_flight)

    return warehouse_changes


def _result(
    spec: SyncSpec,
    context: dg.SensorEvaluationContext,
    previous: ChangeCursor,
    recent: RecentPartitions,
    fingerprints: dict[str, str],
    changed: list[str],
    in_flight: set[str],
) -> dg.SensorResult | dg.SkipReason:
    """The run requests and the cursor that follow one evaluation."""
    held_back = [day for day in changed if day in in_flight]
    requests = [
        dg.RunRequest(
            partition_key=day,
            run_key=f"{spec.name}:{day}:{fingerprints[day]}",
            tags=sync_partition_tags(spec.name, day),
        )
        for day in changed
        if day not in in_flight
    ]
    # A held-back day keeps the fingerprint it was last requested with (if any): still changed.
    known = {day: fp for day, fp in fingerprints.items() if day not in held_back}
    known |= {day: previous.fingerprints[day] for day in held_back if day in previous.fingerprints}
    since = recent.since.date().isoformat()
    cursor = ChangeCursor(recent.cursor, since, dict(sorted(known.items())))
    if held_back:
        message = (
            f"held back {len(held_back)} changed partition(s) of sync {spec.name!r} with a run "
            f"queued or in progress: {', '.join(held_back)}"
        )
        context.log.info(message)
    else:
        message = (
            f"no changed rows since {recent.since.date().isoformat()} "
            f"(sensor_lookback_days: {spec.sensor_lookback_days:g})"
        )
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=cursor.dump())
    if cursor == previous:
        return dg.SkipReason(message)
    return dg.SensorResult(skip_reason=message, cursor=cursor.dump())
