"""The body of `pendo/<name>`: push one partition under its lease, record what failed.

The lease is taken before anything is sent and held until the run's failures are recorded,
so a second run of the same partition (schedule and sensor, a retry, an overlapping backfill)
waits and then sees this run's state and failures, never sends what this run sent.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import sqlalchemy as sa

from pendo_assets.budget import HostBudget, PostgresBudget, VisitorPacing
from pendo_assets.client import (
    MissingCredentialError,
    PendoAuthError,
    PendoClient,
    PendoConfigError,
    PendoRequestError,
    PendoUnavailableError,
)
from pendo_assets.sync.deliver.outcome import SyncAborted
from pendo_assets.sync.engine import SyncOptions, destination_of, run_sync
from pendo_assets.sync.prepare.field_types import MissingFieldsError
from pendo_assets.sync.record.partition_lease import PartitionBusy, PartitionLease
from pendo_assets.sync.record.state_store import StateStore
from pendo_assets.sync.record.state_tables import StateDatabaseError
from pendo_assets.sync.results import SyncReport
from pendo_assets.sync.source.warehouse import PartitionStream, WarehouseError
from pendo_assets.sync.spec import SyncSpec

from .database_resources import SyncStateResource, WarehouseResource
from .report_metadata import dry_run_metadata, failure_rate_check, report_metadata
from .resources import PendoResource


def push_partition(
    context: dg.AssetExecutionContext,
    spec: SyncSpec,
    options: SyncOptions,
    pendo: PendoResource,
    warehouse: WarehouseResource,
    sync_state: SyncStateResource,
) -> dg.MaterializeResult:
    """Stream the partition's rows fresh from the warehouse and push them, chunk by chunk.

    The rows are read after the lease is taken: a run that waited for another run of the same
    partition pushes what the warehouse holds now, never an older copy.
    """
    try:
        client = pendo.get_client(rate_budget=_budget(spec, sync_state))
    except PendoConfigError as error:
        raise dg.Failure(description=f"sync {spec.name!r}: {error}", allow_retries=False) from None
    pacing: VisitorPacing | None = None
    try:
        if options.dry_run:  # sends nothing, changes no state: no lease, no failure records
            rows = warehouse.stream_partition(spec, context.partition_key, spec.mapped)
            try:
                state = _state(spec, sync_state)
                report = _run(context, spec, rows, warehouse, client, options, state, None, None)
            except SyncAborted as aborted:
                raise _failure(spec, aborted) from None
            return dg.MaterializeResult(
                metadata=dry_run_metadata(report),
                check_results=[failure_rate_check(spec, report)],
            )
        with _lease(context, spec, client, options, sync_state) as lease:
            started = datetime.fromtimestamp(lease.acquired_at or 0.0, UTC)
            rows = warehouse.stream_partition(spec, context.partition_key, spec.mapped)
            pacing = None if spec.is_metadata else _pacing(spec, client, sync_state)
            try:
                report = _run(
                    context, spec, rows, warehouse, client, options, lease.store, lease, pacing
                )
            except SyncAborted as aborted:
                _record(sync_state, spec, context, aborted.report, started)
                raise _failure(spec, aborted) from None
            _record(sync_state, spec, context, report, started)
    finally:
        client.close()
        if pacing is not None:
            pacing.close()
    for warning in report.warnings:
        context.log.warning(warning)
    return dg.MaterializeResult(
        metadata=report_metadata(spec, report),
        check_results=[failure_rate_check(spec, report)],
    )


def _failure(spec: SyncSpec, aborted: SyncAborted) -> dg.Failure:
    return dg.Failure(
        description=str(aborted),
        metadata=report_metadata(spec, aborted.report),
        allow_retries=aborted.retryable,
    )


def _budget(spec: SyncSpec, sync_state: SyncStateResource) -> HostBudget | PostgresBudget:
    """The destination's budget, shared by every run on this state database."""
    try:
        return sync_state.budget()
    except (sa.exc.SQLAlchemyError, OSError) as error:
        raise dg.Failure(
            description=f"sync {spec.name!r}: cannot open the shared Pendo rate budget "
            f"({sync_state.display_url}): {type(error).__name__}: "
            f"{getattr(error, 'orig', None) or error}; nothing was sent",
        ) from None


def _pacing(spec: SyncSpec, client: PendoClient, sync_state: SyncStateResource) -> VisitorPacing:
    return _budget(spec, sync_state).pacing(destination_of(spec, client))


def _state(spec: SyncSpec, sync_state: SyncStateResource) -> StateStore:
    try:
        return sync_state.state_store()
    except StateDatabaseError as error:
        raise dg.Failure(
            description=f"sync {spec.name!r}: {error} ({sync_state.display_url})",
            allow_retries=False,
        ) from None


def _lease(
    context: dg.AssetExecutionContext,
    spec: SyncSpec,
    client: PendoClient,
    options: SyncOptions,
    sync_state: SyncStateResource,
) -> PartitionLease:
    """The partition's lease, taken: also proves the state database takes writes."""
    lease = PartitionLease(
        _state(spec, sync_state),
        destination=destination_of(spec, client),
        sync_name=spec.name,
        partition_key=context.partition_key,
        holder=context.run.run_id,
        settings=options.lease,
    )
    try:
        lease.acquire()
    except PartitionBusy as busy:
        raise dg.Failure(description=f"sync {spec.name!r}: {busy}") from None
    except sa.exc.SQLAlchemyError as error:
        raise dg.Failure(
            description=f"sync {spec.name!r}: cannot write the sync state database "
            f"({sync_state.display_url}): {type(error).__name__}: "
            f"{getattr(error, 'orig', None) or error}; nothing was sent",
            allow_retries=False,  # a read-only or full database needs a person, not a retry
        ) from None
    if lease.waited_seconds >= 1:
        context.log.info(
            f"waited {lease.waited_seconds:.0f}s for another run of partition "
            f"{context.partition_key} to finish"
        )
    return lease


def _run(
    context: dg.AssetExecutionContext,
    spec: SyncSpec,
    rows: PartitionStream,
    warehouse: WarehouseResource,
    client: PendoClient,
    options: SyncOptions,
    state: StateStore,
    lease: PartitionLease | None,
    pacing: VisitorPacing | None,
) -> SyncReport:
    try:
        return run_sync(
            spec,
            rows,
            client,
            partition_key=context.partition_key,
            options=options,
            state=state,
            lease=lease,
            pacing=pacing,
            log=context.log,
        )
    except (MissingCredentialError, MissingFieldsError, PendoAuthError) as error:
        # Configuration: no retry can help. (Auth errors reach here from the preflight.)
        raise dg.Failure(description=f"sync {spec.name!r}: {error}", allow_retries=False) from None
    except (PendoUnavailableError, PendoRequestError) as error:
        raise dg.Failure(description=f"sync {spec.name!r}: {error}") from None
    except WarehouseError as error:  # before any row was read: nothing happened
        raise warehouse.unreadable(spec, error) from None


def _record(
    sync_state: SyncStateResource,
    spec: SyncSpec,
    context: dg.AssetExecutionContext,
    report: SyncReport,
    started: datetime,
) -> None:
    """This run's failed rows replace the partition's earlier ones, in one transaction."""
    sync_state.failure_store().record_run(
        sync_name=spec.name,
        partition_key=context.partition_key,
        run_id=context.run.run_id,
        run_started_at=started,
        failures=report.failures,
    )
