"""Builds the Dagster definitions for a set of syncs: the YAML file's or your own in Python."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:  # what define_asset_job returns; dagster does not export the name
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

from pendo_assets.sync.spec import SyncsFile, SyncSpec

from .automation import build_job, build_schedule
from .change_sensor import build_change_sensor
from .retry_sensor import build_retry_sensor
from .sync_assets import build_sync_assets


def daily_partitions(start_date: date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start_date.isoformat(), timezone="UTC")


def build_pendo_definitions(
    syncs: SyncsFile | Sequence[SyncSpec],
    *,
    start_date: date | None = None,
    resources: Mapping[str, Any] | None = None,
) -> dg.Definitions:
    """Assets, checks, jobs, schedules and sensors for every sync.

    `resources` must provide `pendo` (PendoResource), `warehouse` (WarehouseResource) and
    `sync_state` (SyncStateResource).
    """
    if isinstance(syncs, SyncsFile):
        start_date = start_date or syncs.start_date
        specs: Sequence[SyncSpec] = syncs.syncs
    else:
        specs = syncs
    if start_date is None:
        raise ValueError("start_date is needed when syncs are given as a list of SyncSpec")
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate sync names: {duplicates}")
    partitions_def = daily_partitions(start_date)
    assets: list[dg.AssetsDefinition] = []
    jobs: list[UnresolvedAssetJobDefinition] = []
    schedules: list[dg.ScheduleDefinition] = []
    sensors: list[dg.SensorDefinition] = []
    for spec in specs:
        assets += build_sync_assets(spec, partitions_def)
        job = build_job(spec, partitions_def)
        jobs.append(job)
        schedules.append(build_schedule(spec, job, partitions_def))
        sensors.append(build_change_sensor(spec, job, partitions_def))
        sensors.append(build_retry_sensor(spec, job))
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources=dict(resources or {}),
    )
