"""One sync of one partition: prepare, detect changes, send, and account for every row."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pendo_assets.client import (
    PendoAuthError,
    PendoClient,
    PendoError,
    PendoRequestError,
    PendoUnavailableError,
)

from .change_detection import (
    CHANGED_AFTER_DELIVERY,
    DUPLICATE_EVENT,
    Decision,
    Keyed,
    changes_markdown,
    decide_events,
    decide_metadata,
    key_events,
    key_metadata,
    legacy_event_keys,
)
from .field_types import MissingFieldsError, apply_schema
from .metadata_delivery import deliver_metadata
from .metadata_rows import PreparedMetadata, prepare_metadata
from .outcome import NOT_IN_PENDO, DeliveryOutcome, SyncAborted, brief
from .partition_lease import LeaseSettings, PartitionBusy, PartitionLease
from .results import DryRun, RowFailure, SyncReport
from .spec import EVENT_ID_TARGET, SyncSpec
from .state_store import Accepted, Known, StateScope, StateStore
from .track_delivery import deliver_events
from .track_rows import PreparedEvents, prepare_events

logger = logging.getLogger("pendo_assets.sync")
Log = logging.Logger | logging.LoggerAdapter[logging.Logger]

DEFAULT_MAX_IN_FLIGHT = 16  # measured: see README, "Throughput"


@dataclass(frozen=True)
class SyncOptions:
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    now_ms: int | None = None  # "now" for the 7-day event window; injectable for tests
    run_id: str = "local"
    full_refresh: bool = False  # resend every metadata record, changed or not
    resend_events: bool = False  # with full_refresh: resend events already delivered too
    dry_run: bool = False  # read, map, validate and diff; send nothing, change nothing
    preflight: bool = False  # check mapped metadata fields against Pendo's schema first
    lease: LeaseSettings = field(default_factory=LeaseSettings)  # one run per partition


def run_sync(
    spec: SyncSpec,
    frame: pd.DataFrame,
    client: PendoClient,
    *,
    partition_key: str | None = None,
    options: SyncOptions | None = None,
    state: StateStore | None = None,
    lease: PartitionLease | None = None,
    log: Log = logger,
) -> SyncReport:
    """Send one partition's rows; raise `SyncAborted` (carrying the report) if the sync stopped.

    With a `state` store, only rows that Pendo does not already have as they are go out, and
    what Pendo accepted is recorded batch by batch, under a lease on the partition (the one
    given, or one taken here and released at the end): a concurrent run of the same partition
    waits, then sees this run's state. Without a store, every valid row is sent.
    """
    options = options or SyncOptions()
    scope = state.scope(destination_of(spec, client), spec.name) if state else None
    if scope is None or options.dry_run or lease is not None:
        return _guarded(spec, frame, client, partition_key, options, scope, lease, log)
    with PartitionLease(
        scope.store,
        destination=scope.destination,
        sync_name=spec.name,
        partition_key=partition_key,
        holder=options.run_id,
        settings=options.lease,
    ) as own_lease:
        return _guarded(spec, frame, client, partition_key, options, scope, own_lease, log)


def destination_of(spec: SyncSpec, client: PendoClient) -> str:
    """The Pendo this sync writes to: base URL and a fingerprint of the credential it uses."""
    return client.destination("integration_key" if spec.is_metadata else "track_event_secret")


def _guarded(
    spec: SyncSpec,
    frame: pd.DataFrame,
    client: PendoClient,
    partition_key: str | None,
    options: SyncOptions,
    scope: StateScope | None,
    lease: PartitionLease | None,
    log: Log,
) -> SyncReport:
    """Any unexpected error still ends with every row accounted for, never a bare traceback."""
    # A partition holds millions of long-lived per-row objects; full collections scanning them
    # again and again cost a quarter of a million-row sync (measured). So no collection while
    # they are built, and they are frozen out of later ones; all are freed normally at the end.
    gc.disable()
    try:
        return _run_sync(spec, frame, client, partition_key, options, scope, lease, log)
    except (PendoError, SyncAborted, PartitionBusy):
        raise
    except Exception as error:
        raise _internal_error(spec, frame, partition_key, client, error) from error
    finally:
        gc.unfreeze()
        gc.enable()


def _run_sync(
    spec: SyncSpec,
    frame: pd.DataFrame,
    client: PendoClient,
    partition_key: str | None,
    options: SyncOptions,
    state: StateScope | None,
    lease: PartitionLease | None,
    log: Log,
) -> SyncReport:
    started = time.perf_counter()
    requests_before = client.stats_snapshot().requests
    frame = frame.reset_index(drop=True)
    report = SyncReport(sync_name=spec.name, partition_key=partition_key, rows=len(frame))
    report.destination = state.destination if state else None

    if spec.is_metadata:
        prepared_md = prepare_metadata(spec, frame)
        failures, ids, skipped = prepared_md.failures, prepared_md.ids, dict(prepared_md.skipped)
        # Keys and hashes are of the values as the warehouse has them, before coercion to
        # Pendo's types, so an unchanged partition needs no schema read: no request at all.
        keyed = key_metadata(prepared_md)
        known = state.known(keyed.keys, with_payloads=options.dry_run) if state else {}
        decision = (
            decide_metadata(keyed, known, mode=spec.mode, full_refresh=options.full_refresh)
            if state
            else Decision(send=prepared_md.sendable, new=set(map(int, prepared_md.sendable)))
        )
        if options.preflight and len(decision.send):
            decision.send = _preflight(spec, client, prepared_md, decision, report, requests_before)
        send = _deliver_metadata(spec, client, prepared_md, decision, keyed, options, state, lease)
    else:
        now_ms = options.now_ms if options.now_ms is not None else int(time.time() * 1000)
        prepared_ev = prepare_events(spec, frame, now_ms=now_ms)
        _warn_old_events(spec, prepared_ev, report, partition_key, log)
        failures, ids, skipped = prepared_ev.failures, prepared_ev.visitor_ids, {}
        keyed = key_events(prepared_ev) if state else _unkeyed(prepared_ev.sendable)
        known = _known_events(state, keyed) if state else {}
        resend = options.full_refresh and options.resend_events
        by_event_id = prepared_ev.event_ids is not None
        decision = (
            decide_events(keyed, known, resend=resend, by_event_id=by_event_id)
            if state
            else Decision(send=prepared_ev.sendable, new=set(map(int, prepared_ev.sendable)))
        )
        for position, reason in decision.failed.items():
            failures[position] = RowFailure(
                position, prepared_ev.visitor_ids[position], reason, field=EVENT_ID_TARGET
            )
        report.changed_after_delivery = sum(
            1 for why in decision.skipped.values() if why == CHANGED_AFTER_DELIVERY
        )
        send = _deliver_events(spec, client, prepared_ev, decision, keyed, options, state, lease)

    _log_validation(spec, failures, log)
    skipped.update(decision.skipped)
    report.skipped = len(skipped)
    report.skipped_reasons.update(skipped.values())
    not_unchanged = (DUPLICATE_EVENT, CHANGED_AFTER_DELIVERY)
    report.skipped_unchanged = sum(
        1 for why in decision.skipped.values() if why not in not_unchanged
    )
    if options.dry_run:
        report.dry_run = DryRun(
            would_create=len(decision.new),
            would_change=len(decision.changed),
            unchanged=len(decision.skipped),
            invalid=len(failures),
            preview=changes_markdown(keyed, decision, known, ids),
        )
        outcome = DeliveryOutcome(report.rows)
    else:
        gc.freeze()  # what preparation built lives until the end: keep it out of collections
        gc.enable()
        outcome = send()

    _account(report, failures, decision.send, ids, outcome, dry_run=options.dry_run)
    report.in_doubt = outcome.in_doubt_sends
    report.requests = client.stats_snapshot().requests - requests_before
    report.duration_seconds = time.perf_counter() - started
    report.check_invariant()
    if outcome.aborted:
        retryable = not isinstance(outcome.abort_cause, PendoAuthError)
        raise _stopped(spec, report, f"stopped: {outcome.abort_reason}", retryable=retryable)
    return report


def _preflight(
    spec: SyncSpec,
    client: PendoClient,
    prepared: PreparedMetadata,
    decision: Decision,
    report: SyncReport,
    requests_before: int,
) -> np.ndarray:
    """Read Pendo's schema once: missing fields or a refused key stop the sync before any row.

    Returns the rows still to send after coercion. On a stop every row is still accounted
    for: invalid ones with their own reason, skipped ones as skipped, the rest "not sent".
    """
    try:
        return apply_schema(spec, prepared, client.read_schema(spec.metadata_kind), decision.send)
    except (MissingFieldsError, PendoAuthError, PendoUnavailableError, PendoRequestError) as error:
        problem: Exception = error
    skipped = {**prepared.skipped, **decision.skipped}
    report.skipped = len(skipped)
    report.skipped_reasons.update(skipped.values())
    aborted = DeliveryOutcome(prepared.rows)
    aborted.abort(str(problem), problem)
    _account(report, prepared.failures, decision.send, prepared.ids, aborted, dry_run=False)
    report.requests = client.stats_snapshot().requests - requests_before
    report.check_invariant()
    retryable = isinstance(problem, PendoUnavailableError | PendoRequestError)
    raise _stopped(spec, report, f"stopped before sending: {problem}", retryable=retryable)


def _stopped(spec: SyncSpec, report: SyncReport, what: str, *, retryable: bool) -> SyncAborted:
    """The stop of a sync, with what became of every row in its message."""
    return SyncAborted(
        f"sync {spec.name!r} partition {report.partition_key} {what} "
        f"({report.sent} sent, {report.failed} failed, {report.skipped} skipped "
        f"of {report.rows} rows)",
        report=report,
        retryable=retryable,
    )


def _unkeyed(positions: np.ndarray) -> Keyed:
    return Keyed(positions, [], [], [])


def _recorder(
    keyed: Keyed,
    options: SyncOptions,
    state: StateScope | None,
    lease: PartitionLease | None,
    *,
    with_payloads: bool,
) -> Callable[[Iterable[int]], None] | None:
    """What delivery calls with the positions Pendo accepted: one state write for them all."""
    if state is None:
        return None
    index_of = {int(p): i for i, p in enumerate(keyed.positions)}

    def record(positions: Iterable[int]) -> None:
        accepted = []
        for position in positions:
            i = index_of[int(position)]
            payload = keyed.payloads[i] if with_payloads else None
            accepted.append(Accepted(keyed.keys[i], keyed.hashes[i], payload))
        state.record(options.run_id, accepted, lease=lease)

    return record


def _deliver_metadata(
    spec: SyncSpec,
    client: PendoClient,
    prepared: PreparedMetadata,
    decision: Decision,
    keyed: Keyed,
    options: SyncOptions,
    state: StateScope | None,
    lease: PartitionLease | None,
) -> Callable[[], DeliveryOutcome]:
    return lambda: deliver_metadata(
        client,
        prepared,
        decision.send,
        kind=spec.metadata_kind,
        create=spec.mode in ("upsert", "insert"),
        max_in_flight=options.max_in_flight,
        on_accepted=_recorder(keyed, options, state, lease, with_payloads=True),
        lost=_lost(lease),
    )


def _deliver_events(
    spec: SyncSpec,
    client: PendoClient,
    prepared: PreparedEvents,
    decision: Decision,
    keyed: Keyed,
    options: SyncOptions,
    state: StateScope | None,
    lease: PartitionLease | None,
) -> Callable[[], DeliveryOutcome]:
    return lambda: deliver_events(
        client,
        prepared,
        decision.send,
        max_in_flight=options.max_in_flight,
        on_accepted=_recorder(keyed, options, state, lease, with_payloads=False),
        in_doubt=spec.in_doubt,
        lost=_lost(lease),
    )


def _lost(lease: PartitionLease | None) -> Callable[[], str | None] | None:
    """Why the run may no longer send, once its lease renewer found the lease taken over."""
    if lease is None:
        return None
    return lambda: lease.lost_message() if lease.lost else None


def _known_events(state: StateScope, keyed: Keyed) -> dict[str, Known]:
    """Delivered events by identity key, plus those recorded under older content-hash keys.

    State written before identity keys holds content hashes: an event found under one was
    delivered with exactly this content, so it counts as delivered under its identity key too.
    """
    known = state.known(keyed.keys)
    if state.has_legacy_event_keys():
        legacy = legacy_event_keys(keyed)
        found = state.known(legacy)
        for key, old, payload_hash in zip(keyed.keys, legacy, keyed.hashes, strict=True):
            if old in found and key not in known:
                known[key] = Known(payload_hash, None)
    return known


def _warn_old_events(
    spec: SyncSpec,
    prepared: PreparedEvents,
    report: SyncReport,
    partition_key: str | None,
    log: Log,
) -> None:
    if prepared.older_than_window:
        warning = (
            f"{prepared.older_than_window} event(s) are older than Pendo's 7-day "
            "processing window: Pendo accepts them but its regular jobs may not process them"
        )
        report.warnings.append(warning)
        log.warning("sync %r partition %s: %s", spec.name, partition_key, warning)


def _account(
    report: SyncReport,
    validation_failures: dict[int, RowFailure],
    to_send: np.ndarray,
    ids: list[str | None],
    outcome: DeliveryOutcome,
    *,
    dry_run: bool,
) -> None:
    """Every row: sent, failed (validation, Pendo, or never sent after an abort) or skipped."""
    failures = dict(validation_failures)
    if dry_run:
        # Nothing was sent: the rows that would go out count as skipped for the invariant.
        report.skipped += len(to_send)
        report.skipped_reasons["dry run: not sent"] += len(to_send)
    failures.update(outcome.failed)
    if outcome.not_in_pendo:
        report.not_in_pendo = len(outcome.not_in_pendo)
        report.skipped += report.not_in_pendo
        report.skipped_reasons[NOT_IN_PENDO] += report.not_in_pendo
    if outcome.aborted:
        # Refused credentials or fields Pendo lacks need a person first, not another run.
        retryable = not isinstance(outcome.abort_cause, PendoAuthError | MissingFieldsError)
        unsent = to_send[~outcome.sent[to_send]]
        for position in unsent:
            p = int(position)
            if p not in failures and p not in outcome.not_in_pendo:
                failures[p] = RowFailure(
                    p, ids[p], f"not sent: {outcome.abort_reason}", retryable=retryable
                )
    report.sent = int(outcome.sent.sum())
    report.retried = int(outcome.retried.sum())
    report.failures = [failures[p] for p in sorted(failures)]
    report.failed = len(report.failures)


def _log_validation(spec: SyncSpec, failures: dict[int, RowFailure], log: Log) -> None:
    for failure in list(failures.values())[:5]:
        log.warning(
            "sync %r: row id %r, field %r: %s",
            spec.name,
            failure.record_id,
            failure.field,
            failure.reason,
        )
    if len(failures) > 5:
        log.warning("sync %r: %d more invalid rows", spec.name, len(failures) - 5)


def _internal_error(
    spec: SyncSpec,
    frame: pd.DataFrame,
    partition_key: str | None,
    client: PendoClient,
    error: Exception,
) -> SyncAborted:
    """A failure outside delivery (preparing rows, reading state): every row failed, with why.

    Nothing was sent (delivery catches its own errors), so every row is a failure a later run
    may fix when the cause was the state database, and one it cannot when it was a bug.
    """
    problem = (
        f"state database error: {type(error).__name__}: {getattr(error, 'orig', None) or ''}"
        if isinstance(error, sa.exc.SQLAlchemyError)
        else brief(error)
    )
    reason = f"internal error: {problem}"
    retryable = isinstance(error, sa.exc.SQLAlchemyError)
    report = SyncReport(sync_name=spec.name, partition_key=partition_key, rows=len(frame))
    ids = _row_ids(spec, frame)
    report.failures = [
        RowFailure(p, ids[p], reason, retryable=retryable) for p in range(len(frame))
    ]
    report.failed = len(report.failures)
    logger.error("sync %r partition %s: %s", spec.name, partition_key, reason)
    return SyncAborted(
        f"sync {spec.name!r} partition {partition_key} stopped: {reason} "
        f"(0 sent, {report.failed} failed of {report.rows} rows)",
        report=report,
        retryable=retryable,
    )


def _row_ids(spec: SyncSpec, frame: pd.DataFrame) -> list[str | None]:
    """Each row's id as text, as far as it can be read; for failure records only."""
    try:
        column = frame[spec.id_column].reset_index(drop=True)
    except Exception:
        return [None] * len(frame)
    return [None if value is None else str(value)[:500] for value in column.tolist()]
