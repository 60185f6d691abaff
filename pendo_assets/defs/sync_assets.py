"""The two assets of one sync: `warehouse/<name>` reads a partition, `pendo/<name>` pushes it.

Each is built from an `AssetSpec`, so a component's `translation:` (or any `translate` hook)
can change keys, groups, descriptions, tags, owners and automation conditions of both.
"""

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import dagster as dg
import pandas as pd
from pydantic import Field

from pendo_assets.sync.engine import SyncOptions
from pendo_assets.sync.prepare.convert import to_identifiers
from pendo_assets.sync.source.warehouse import WarehouseError
from pendo_assets.sync.spec import SyncSpec

from .database_resources import SyncStateResource, WarehouseResource
from .markdown import frame_preview
from .push import push_partition
from .report_metadata import FAILURE_RATE_CHECK
from .resources import PendoResource

IDS_CHECK = "identifiers_not_null"
PENDO_POOL = "pendo_api"

# A failed sync step is retried (Pendo outages are usually short); auth and config errors are not.
SYNC_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)


def warehouse_key(spec: SyncSpec) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", spec.name])


def pendo_key(spec: SyncSpec) -> dg.AssetKey:
    return dg.AssetKey(["pendo", spec.name])


Role = Literal["warehouse", "pendo"]
#: (sync, which of its two assets, the default spec) -> the spec to build the asset from.
Translate = Callable[[SyncSpec, Role, dg.AssetSpec], dg.AssetSpec]


class SyncKeys(NamedTuple):
    """The keys of a sync's two assets, as built (a translation may have changed them)."""

    warehouse: dg.AssetKey
    pendo: dg.AssetKey


def default_keys(spec: SyncSpec) -> SyncKeys:
    return SyncKeys(warehouse_key(spec), pendo_key(spec))


def sync_asset_specs(
    spec: SyncSpec, partitions_def: dg.PartitionsDefinition, translate: Translate | None = None
) -> tuple[dg.AssetSpec, dg.AssetSpec]:
    """The specs of `warehouse/<name>` and `pendo/<name>`, translated; the push depends on the
    warehouse asset's translated key."""
    source = spec.source.table or "query"
    warehouse = dg.AssetSpec(
        key=warehouse_key(spec),
        partitions_def=partitions_def,
        group_name=spec.name,
        kinds={"sql"},
        description=f"Rows of `{source}` whose `{spec.source.partition_column}` falls in the "
        "partition's UTC day, for the Pendo sync of the same name.",
    )
    if translate is not None:
        warehouse = _translated(spec, "warehouse", warehouse, translate)
    pendo = dg.AssetSpec(
        key=pendo_key(spec),
        partitions_def=partitions_def,
        # A dependency, not an input: no copy of the rows passes through Dagster's storage;
        # the push reads them from the warehouse itself, fresh, once it holds the partition.
        deps=[warehouse.key],
        group_name=spec.name,
        kinds={"pendo"},
        description=f"{spec.object_type.replace('_', ' ').capitalize()} pushed to Pendo "
        f"({spec.mode}).",
    )
    if translate is not None:
        pendo = _translated(spec, "pendo", pendo, translate)
    return warehouse, pendo


def _translated(
    spec: SyncSpec, role: Role, base: dg.AssetSpec, translate: Translate
) -> dg.AssetSpec:
    translated = translate(spec, role, base)
    if translated.partitions_def != base.partitions_def:
        raise dg.DagsterInvalidDefinitionError(
            f"sync {spec.name!r}: a translation may not change the partitions of "
            f"{base.key.to_user_string()}: the jobs, schedule and sensors of a sync partition "
            "its assets by UTC day from start_date"
        )
    return translated


def build_sync_assets(
    spec: SyncSpec, partitions_def: dg.PartitionsDefinition, translate: Translate | None = None
) -> list[dg.AssetsDefinition]:
    warehouse, pendo = sync_asset_specs(spec, partitions_def, translate)
    return [_warehouse_asset(spec, warehouse), _pendo_asset(spec, pendo)]


def _warehouse_asset(spec: SyncSpec, asset_spec: dg.AssetSpec) -> dg.AssetsDefinition:
    key = asset_spec.key
    source = spec.source.table or "query"

    @dg.multi_asset(
        name=key.to_python_identifier(),
        specs=[asset_spec],
        check_specs=[
            dg.AssetCheckSpec(
                IDS_CHECK,
                asset=key,
                blocking=True,
                description=f"`{spec.id_column}` (Pendo's {spec.id_target}) is never null or "
                "empty. Warns for a few bad rows; blocks the push when more than "
                "max_failure_rate of the rows lack one.",
            )
        ],
    )
    def warehouse_rows(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """Counts and checks the partition, chunk by chunk; keeps no copy of its rows (the push
        reads them)."""
        rows = missing = 0
        preview: pd.DataFrame | None = None
        counted: list[int] = []
        try:
            key = context.partition_key
            # Without a preview only the ids are looked at: no other column is loaded.
            columns = spec.columns if spec.preview_rows else [spec.id_column]
            chunks = warehouse.stream_partition(spec, key, columns, on_count=counted.append)
            for chunk in chunks:
                rows += len(chunk)
                missing += int(to_identifiers(chunk[spec.id_column]).invalid.sum())
                if preview is None and spec.preview_rows:
                    preview = chunk.head(spec.preview_rows)
        except WarehouseError as error:
            raise warehouse.unreadable(spec, error) from None
        [unplaced] = counted
        if unplaced:
            context.log.warning(
                f"sync {spec.name!r}: {unplaced} rows of {source} have a NULL or unusable "
                f"`{spec.source.partition_column}` and fall in no partition: never synced"
            )
        metadata: dict[str, Any] = {
            "dagster/row_count": rows,
            # Rows of the whole source no partition reads (NULL or unusable values).
            "rows_without_partition": unplaced,
        }
        if spec.preview_rows:  # opt-in: a preview copies customer data into the event log
            shown = preview if preview is not None else pd.DataFrame(columns=spec.columns)
            metadata["preview"] = dg.MetadataValue.md(frame_preview(shown, spec.preview_rows))
        return dg.MaterializeResult(
            metadata=metadata, check_results=[_ids_check(spec, rows, missing)]
        )

    return warehouse_rows


def _ids_check(spec: SyncSpec, rows: int, missing: int) -> dg.AssetCheckResult:
    share = missing / rows if rows else 0.0
    severity = (
        dg.AssetCheckSeverity.ERROR if share > spec.max_failure_rate else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(
        check_name=IDS_CHECK,
        passed=missing == 0,
        severity=severity,
        metadata={
            "rows": rows,
            "missing_identifiers": missing,
            "share": float(share),
            "max_failure_rate": float(spec.max_failure_rate),
        },
        description=None
        if missing == 0
        else f"{missing} of {rows} rows have no {spec.id_target} in `{spec.id_column}`",
    )


def _pendo_asset(spec: SyncSpec, asset_spec: dg.AssetSpec) -> dg.AssetsDefinition:
    key = asset_spec.key

    @dg.multi_asset(
        name=key.to_python_identifier(),
        specs=[asset_spec],
        pool=PENDO_POOL,
        retry_policy=SYNC_RETRY_POLICY,
        check_specs=[
            dg.AssetCheckSpec(
                FAILURE_RATE_CHECK,
                asset=key,
                description=f"Failed rows stay at or under {spec.max_failure_rate:.2%} of rows.",
            )
        ],
    )
    def pushed(
        context: dg.AssetExecutionContext,
        config: SyncRunConfig,
        pendo: PendoResource,
        warehouse: WarehouseResource,
        sync_state: SyncStateResource,
    ) -> dg.MaterializeResult:
        options = SyncOptions(
            max_in_flight=pendo.max_in_flight,
            run_id=context.run.run_id,
            full_refresh=config.full_refresh,
            resend_events=config.resend_events,
            dry_run=config.dry_run,
            preflight=spec.is_metadata,
            lease=sync_state.lease_settings(),
        )
        return push_partition(context, spec, options, pendo, warehouse, sync_state)

    return pushed


class SyncRunConfig(dg.Config):
    """Run config of every `pendo/<name>` asset (Launchpad, or `--config-json`)."""

    full_refresh: bool = Field(
        default=False,
        description="Resend every record, changed or not (events only with resend_events).",
    )
    resend_events: bool = Field(
        default=False,
        description="With full_refresh: resend track events Pendo already has (duplicates them).",
    )
    dry_run: bool = Field(
        default=False,
        description="Read, map, validate and diff; send nothing and change no state.",
    )
