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
from .deployment_check import check_deployment
from .retry_sensor import build_retry_sensor
from .sync_assets import SyncKeys, Translate, build_sync_assets


def daily_partitions(start_date: date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start_date.isoformat(), timezone="UTC")


def build_pendo_definitions(
    syncs: SyncsFile | Sequence[SyncSpec],
    *,
    start_date: date | None = None,
    resources: Mapping[str, Any] | None = None,
    executor: dg.ExecutorDefinition | dg.Executor | None = None,
    translate: Translate | None = None,
) -> dg.Definitions:
    """Assets, checks, jobs, schedules and sensors for every sync.

    `resources` must provide `pendo` (PendoResource), `warehouse` (WarehouseResource) and
    `sync_state` (SyncStateResource). `executor` runs every job's steps (e.g.
    `pendo_celery_executor()` from `executors`); None keeps Dagster's default. SQLite state
    with an executor that runs steps on other machines is refused here (`deployment_check`).
    `translate` may change each asset's spec (the component's `translation:`); two assets
    that end up with one key are refused.
    """
    check_deployment(executor=executor, state_url=_state_url(resources))
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
    owners: dict[dg.AssetKey, str] = {}
    for spec in specs:
        built = build_sync_assets(spec, partitions_def, translate)
        keys = SyncKeys(*(asset.key for asset in built))
        for key in keys:
            if key in owners:
                raise dg.DagsterInvalidDefinitionError(
                    f"syncs {owners[key]!r} and {spec.name!r} both map to asset key "
                    f"{key.to_user_string()!r}: give each sync's assets keys of their own "
                    "(e.g. use {{ sync.name }} in the translation's key)"
                    if owners[key] != spec.name
                    else f"sync {spec.name!r}: its warehouse and pendo assets both map to asset "
                    f"key {key.to_user_string()!r}: the translation's key must tell them apart"
                )
            owners[key] = spec.name
        assets += built
        job = build_job(spec, partitions_def, keys)
        jobs.append(job)
        schedules.append(build_schedule(spec, job, partitions_def))
        sensors.append(build_change_sensor(spec, job, partitions_def, keys))
        sensors.append(build_retry_sensor(spec, job, keys=keys))
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources=dict(resources or {}),
        executor=executor,
    )


def _state_url(resources: Mapping[str, Any] | None) -> str | None:
    """The sync state's URL as the steps will see it (an EnvVar read now), if known."""
    url = getattr((resources or {}).get("sync_state"), "url", None)
    if isinstance(url, dg.EnvVar):
        return url.get_value()
    return url if isinstance(url, str) else None
