"""One sync of one partition, streamed chunk by chunk through its stages.

    source/   chunks of the partition (`stream_partition`, or a DataFrame given whole)
    prepare/  ids, values, validation (`metadata_rows`, `track_rows`)
    decide/   keys, hashes, one state lookup per chunk, send or skip (`chunk_plan`); a
              metadata partition unchanged since a run left nothing to do is not read at all
              (`unchanged_partition`)
    deliver/  a bounded pool of requests (`metadata_delivery`, `track_delivery`)
    record/   what Pendo accepted, by one writer thread (`state_writer`, `state_store`)
    account   every row sent, failed or skipped (`row_accounting`)

The next chunk is read and planned in a background thread while the current one is sent, so
memory is bounded by a few chunks, not by the partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pendo_assets.budget.visitor_pacing import VisitorPacing
from pendo_assets.client import PendoAuthError, PendoClient, PendoError
from pendo_assets.sync.decide.change_detection import NO_CHANGES, Keyed, changes_markdown
from pendo_assets.sync.decide.chunk_plan import Plan, Planner, Stop
from pendo_assets.sync.decide.unchanged_partition import UnchangedPartition
from pendo_assets.sync.deliver.metadata_delivery import deliver_metadata
from pendo_assets.sync.deliver.outcome import DeliveryOutcome, SyncAborted, brief
from pendo_assets.sync.deliver.send_pool import Delivery, SendPool, done
from pendo_assets.sync.deliver.track_delivery import deliver_events
from pendo_assets.sync.prefetch import Prefetched
from pendo_assets.sync.prepare.metadata_rows import PreparedMetadata
from pendo_assets.sync.prepare.track_rows import PreparedEvents
from pendo_assets.sync.record.partition_lease import LeaseSettings, PartitionBusy, PartitionLease
from pendo_assets.sync.record.state_store import AcceptedRows, StateScope, StateStore
from pendo_assets.sync.record.state_writer import StateWriter
from pendo_assets.sync.results import DryRun, RowFailure, SyncReport
from pendo_assets.sync.row_accounting import account_broken_chunk, account_chunk
from pendo_assets.sync.source.warehouse import PartitionStream, WarehouseError
from pendo_assets.sync.spec import SyncSpec

logger = logging.getLogger("pendo_assets.sync")
Log = logging.Logger | logging.LoggerAdapter[logging.Logger]

DEFAULT_MAX_IN_FLIGHT = 16  # measured: see README, "Throughput"
PREVIEW_RECORDS = 20
LOGGED_FAILURES = 5


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


Rows = pd.DataFrame | Iterable[pd.DataFrame]


def run_sync(
    spec: SyncSpec,
    rows: Rows,
    client: PendoClient,
    *,
    partition_key: str | None = None,
    options: SyncOptions | None = None,
    state: StateStore | None = None,
    lease: PartitionLease | None = None,
    pacing: VisitorPacing | None = None,
    log: Log = logger,
) -> SyncReport:
    """Send one partition's rows; raise `SyncAborted` (carrying the report) if the sync stopped.

    `rows` is the partition as one DataFrame or as chunks of it (`stream_partition`); for
    metadata, chunks must not split the rows of one id (`group_by` the id column does that).

    With a `state` store, only rows that Pendo does not already have as they are go out, and
    what Pendo accepted is recorded batch by batch, under a lease on the partition (the one
    given, or one taken here and released at the end): a concurrent run of the same partition
    waits, then sees this run's state. Without a store, every valid row is sent.

    `pacing` (track events) shares each visitor's one-event-a-second gap with every other run
    sending to the destination; without it the gap holds within this sync only.
    """
    options = options or SyncOptions()
    scope = state.scope(destination_of(spec, client), spec.name) if state else None
    if scope is None or options.dry_run or lease is not None:
        return _run_stream(spec, rows, client, partition_key, options, scope, lease, pacing, log)
    with PartitionLease(
        scope.store,
        destination=scope.destination,
        sync_name=spec.name,
        partition_key=partition_key,
        holder=options.run_id,
        settings=options.lease,
    ) as own_lease:
        return _run_stream(
            spec, rows, client, partition_key, options, scope, own_lease, pacing, log
        )


def destination_of(spec: SyncSpec, client: PendoClient) -> str:
    """The Pendo this sync writes to: base URL and a fingerprint of the credential it uses."""
    return client.destination("integration_key" if spec.is_metadata else "track_event_secret")


@dataclass
class _Broken:
    """A chunk that could not be planned, or came after one that could not: its rows fail."""

    frame: pd.DataFrame
    offset: int
    error: Exception


@dataclass
class _SourceFailed:
    """The warehouse failed mid-stream: rows not read are not part of this sync."""

    error: WarehouseError


def _run_stream(
    spec: SyncSpec,
    rows: Rows,
    client: PendoClient,
    partition_key: str | None,
    options: SyncOptions,
    scope: StateScope | None,
    lease: PartitionLease | None,
    pacing: VisitorPacing | None,
    log: Log,
) -> SyncReport:
    """Plan chunks ahead in a thread, deliver and account them in this one; every row ends up
    sent, failed or skipped, also when the sync stops (then `SyncAborted` carries the report)."""
    started = time.perf_counter()
    requests_before = client.stats_snapshot().requests
    report = SyncReport(sync_name=spec.name, partition_key=partition_key)
    report.destination = scope.destination if scope else None
    stop = Stop()
    planner = Planner(
        spec,
        client,
        scope,
        stop,
        full_refresh=options.full_refresh,
        resend_events=options.resend_events,
        with_payloads=options.dry_run,
        preflight=options.preflight,
        now_ms=options.now_ms,
    )
    unchanged = _unchanged_check(spec, rows, scope, partition_key, options)
    send = _Sender(spec, client, options, scope, lease, pacing)
    try:
        with _read_ahead(rows) as chunks, Prefetched(_planned(iter(chunks), planner)) as plans:
            _deliver_all(plans, spec, options, send, stop, report, log)
    finally:
        unrecorded = send.close()
    if unrecorded is not None:
        stop.set(unrecorded, None, retryable=True)
    if unchanged is not None and unchanged.skipped is not None:
        unchanged.account(report)
    _warn_old_events(spec, planner.older_than_window, report, partition_key, log)
    report.requests = client.stats_snapshot().requests - requests_before
    report.duration_seconds = time.perf_counter() - started
    report.check_invariant()
    if unchanged is not None and unchanged.skipped is None and not stop:
        unchanged.keep(report, run_id=options.run_id, lease=lease)
    if stop:
        reason = stop.reason or ""
        if reason.startswith("internal error"):
            logger.error("sync %r partition %s: %s", spec.name, partition_key, reason)
        what = f"stopped before sending: {reason}" if stop.before_sending else f"stopped: {reason}"
        raise _stopped(spec, report, what, retryable=stop.retryable)
    return report


def _unchanged_check(
    spec: SyncSpec,
    rows: Rows,
    scope: StateScope | None,
    partition_key: str | None,
    options: SyncOptions,
) -> UnchangedPartition | None:
    """A metadata partition streamed from the warehouse is fingerprinted (where the warehouse
    can): not read at all if a run left it, and the state, as they are now."""
    if (
        scope is None
        or not spec.is_metadata
        or partition_key is None
        or options.dry_run
        or not isinstance(rows, PartitionStream)
    ):
        return None
    unchanged = UnchangedPartition(spec, scope, partition_key, may_skip=not options.full_refresh)
    rows.check_fingerprint(unchanged.check)
    return unchanged


def _deliver_all(
    plans: Iterable[object],
    spec: SyncSpec,
    options: SyncOptions,
    send: _Sender,
    stop: Stop,
    report: SyncReport,
    log: Log,
) -> None:
    """Each planned chunk: sent (unless stopped or a dry run), then accounted, in order.

    A chunk's sends start before the chunk ahead of it is accounted: its last answers and the
    next chunk's first requests share the pool. A chunk's sends ask (``lost``) whether the
    chunk ahead stopped the sync, and then send nothing more. Events are sent to their end in
    this thread, and accounted before the next chunk starts.
    """
    pending: tuple[Plan, Delivery] | None = None

    def settle() -> None:
        """Wait for the chunk under way, then account it."""
        nonlocal pending
        if pending is None:
            return
        (item, delivery), pending = pending, None
        outcome = delivery.outcome()
        if outcome.aborted:
            retryable = not isinstance(outcome.abort_cause, PendoAuthError)
            stop.set(outcome.abort_reason or "", outcome.abort_cause, retryable=retryable)
        account_chunk(report, item, outcome, dry_run=options.dry_run)

    for item in plans:
        if not isinstance(item, Plan) or options.dry_run or stop:
            settle()
        if isinstance(item, _SourceFailed):
            if report.rows == 0:
                raise item.error  # nothing happened yet: the warehouse's own error
            stop.set(f"cannot read the warehouse: {item.error}", item.error, retryable=True)
            break
        if isinstance(item, _Broken):
            retryable = _is_database(item.error)
            reason = _internal_reason(item.error)
            stop.set(reason, item.error, retryable=retryable)
            account_broken_chunk(report, spec, item.frame, item.offset, reason, retryable=retryable)
            continue
        assert isinstance(item, Plan)
        _log_validation(spec, item.failures, report, log)
        if options.dry_run or stop:
            outcome = DeliveryOutcome(item.rows)
            if options.dry_run:
                report.dry_run = _dry_run(item, report.dry_run)
            else:
                outcome.abort(str(stop.reason), stop.cause)
            account_chunk(report, item, outcome, dry_run=options.dry_run)
            continue
        delivery = send(item)
        settle()
        pending = (item, delivery)
        if not delivery.under_way:  # events: sent to their end already; stop before the next
            settle()
    settle()


def _read_ahead(rows: Rows) -> AbstractContextManager[Iterable[pd.DataFrame]]:
    """A streamed partition is read one chunk ahead in a thread of its own, so the database
    works out the next rows (the driver waits without the GIL) while this chunk is prepared
    and decided; a frame given whole is its only chunk."""
    if isinstance(rows, pd.DataFrame):
        return nullcontext([rows])
    return Prefetched(iter(rows), name="pendo-read")


def _planned(chunks: Iterator[pd.DataFrame], planner: Planner) -> Iterator[object]:
    """Source, prepare and decide, chunk after chunk (run ahead in the prefetch thread)."""
    offset = 0
    broken: Exception | None = None  # once a chunk could not be planned, no later one is
    while True:
        try:
            frame = next(chunks)
        except StopIteration:
            return
        except WarehouseError as error:
            yield _SourceFailed(error)
            return
        if not len(frame):
            continue
        if broken is not None:
            yield _Broken(frame, offset, broken)
        else:
            try:
                plan = planner.plan(frame, offset)
            except (PendoError, SyncAborted, PartitionBusy):
                raise  # configuration (a missing credential) or the lease: not a row's failure
            except Exception as error:
                broken = error
                yield _Broken(frame, offset, error)
            else:
                yield plan
        offset += len(frame)


def _internal_reason(error: Exception) -> str:
    """A failure outside delivery (preparing rows, reading state), in a few words."""
    problem = (
        f"state database error: {type(error).__name__}: {getattr(error, 'orig', None) or ''}"
        if _is_database(error)
        else brief(error)
    )
    return f"internal error: {problem}"


def _is_database(error: BaseException) -> bool:
    # A later run may fix what the state database refused; a bug stays.
    return isinstance(error, sa.exc.SQLAlchemyError)


def _dry_run(plan: Plan, before: DryRun | None) -> DryRun:
    """The dry run so far, with this chunk added; the preview lists the first changes."""
    so_far = before or DryRun(0, 0, 0, 0, NO_CHANGES)
    decision = plan.decision
    preview = so_far.preview
    if preview == NO_CHANGES and len(decision.send):
        preview = changes_markdown(
            plan.keyed, decision, plan.previous_payloads, plan.ids, PREVIEW_RECORDS
        )
    return DryRun(
        would_create=so_far.would_create + len(decision.new),
        would_change=so_far.would_change + len(decision.changed),
        unchanged=so_far.unchanged + len(decision.skipped),
        invalid=so_far.invalid + len(plan.failures),
        preview=preview,
    )


def _stopped(spec: SyncSpec, report: SyncReport, what: str, *, retryable: bool) -> SyncAborted:
    """The stop of a sync, with what became of every row in its message."""
    return SyncAborted(
        f"sync {spec.name!r} partition {report.partition_key} {what} "
        f"({report.sent} sent, {report.failed} failed, {report.skipped} skipped "
        f"of {report.rows} rows)",
        report=report,
        retryable=retryable,
    )


class _Sender:
    """Delivers planned chunks; what carries from chunk to chunk: each visitor's pacing, and
    (metadata) the one thread that records what Pendo accepted."""

    def __init__(
        self,
        spec: SyncSpec,
        client: PendoClient,
        options: SyncOptions,
        scope: StateScope | None,
        lease: PartitionLease | None,
        pacing: VisitorPacing | None,
    ) -> None:
        self._spec = spec
        self._pacing = pacing
        self._client = client
        self._options = options
        self._scope = scope
        self._lease = lease
        self._next_allowed: dict[str, float] = {}
        self._pool = SendPool(options.max_in_flight) if spec.is_metadata else None
        self._last: Delivery | None = None  # the metadata chunk started last
        self._writer = (
            StateWriter(scope, options.run_id, lease)
            if scope is not None and spec.is_metadata and not options.dry_run
            else None
        )

    def __call__(self, plan: Plan) -> Delivery:
        """Start sending a chunk (metadata: on the run's pool; events: to their end)."""
        spec, options = self._spec, self._options
        if isinstance(plan.prepared, PreparedMetadata):
            assert self._pool is not None
            ahead = self._last  # still under way while this chunk starts

            def lost() -> str | None:
                return self._lost() or (ahead.abort_reason if ahead is not None else None)

            delivery = deliver_metadata(
                self._client,
                plan.prepared,
                plan.decision.send,
                kind=spec.metadata_kind,
                create=spec.mode in ("upsert", "insert"),
                pool=self._pool,
                on_accepted=self._metadata_recorder(plan),
                lost=lost,
            )
            self._last = delivery
            return delivery
        assert isinstance(plan.prepared, PreparedEvents)
        return done(
            deliver_events(
                self._client,
                plan.prepared,
                plan.decision.send,
                max_in_flight=options.max_in_flight,
                on_accepted=self._event_recorder(plan),
                in_doubt=spec.in_doubt,
                lost=self._lost,
                next_allowed=self._next_allowed,
                shared_pacing=self._pacing,
            )
        )

    def close(self) -> str | None:
        """Wait for the sends in flight, write what is still waiting; why the sync must stop if
        a write failed."""
        if self._pool is not None:
            self._pool.close()
        if self._writer is None:
            return None
        self._writer.close()
        return self._writer.problem()

    def _lost(self) -> str | None:
        """Why the run may no longer send: its lease was taken over, or a state write failed."""
        if self._lease is not None and self._lease.lost:
            return self._lease.lost_message()
        return self._writer.problem() if self._writer is not None else None

    def _metadata_recorder(self, plan: Plan) -> Callable[[Iterable[int]], None] | None:
        """Metadata acceptances go to the writer thread, payloads only where the sync keeps them
        (the old values of a dry run's preview)."""
        writer, keep = self._writer, self._spec.keep_payloads
        if writer is None:
            return None
        return lambda positions: writer.put(_accepted(plan.keyed, positions, payloads=keep))

    def _event_recorder(self, plan: Plan) -> Callable[[Iterable[int]], None] | None:
        """Events are recorded by their acknowledgement batches, in the sender's thread: a
        failed write must count the events it held as in doubt."""
        scope = self._scope
        if scope is None:
            return None
        run_id, lease = self._options.run_id, self._lease
        return lambda positions: scope.record(
            run_id, _accepted(plan.keyed, positions, payloads=False), lease=lease
        )


def _accepted(keyed: Keyed, positions: Iterable[int], *, payloads: bool) -> AcceptedRows:
    """The state rows of accepted positions: key, hash and (metadata) the payload."""
    wanted = np.fromiter(positions, dtype=np.int64)
    # `keyed` positions ascend (the chunk's sendable rows in order): where each row is there.
    indexes = np.searchsorted(keyed.positions, wanted).tolist()
    return AcceptedRows(keyed.keys, keyed.hashes, keyed.payloads if payloads else None, indexes)


def _warn_old_events(
    spec: SyncSpec, older: int, report: SyncReport, partition_key: str | None, log: Log
) -> None:
    if older:
        warning = (
            f"{older} event(s) are older than Pendo's 7-day "
            "processing window: Pendo accepts them but its regular jobs may not process them"
        )
        report.warnings.append(warning)
        log.warning("sync %r partition %s: %s", spec.name, partition_key, warning)


def _log_validation(
    spec: SyncSpec, failures: dict[int, RowFailure], report: SyncReport, log: Log
) -> None:
    """The first few invalid rows of the partition, and how many more (per chunk)."""
    budget = max(0, LOGGED_FAILURES - report.failed)
    shown = list(failures.values())[:budget]
    for failure in shown:
        log.warning(
            "sync %r: row id %r, field %r: %s",
            spec.name,
            failure.record_id,
            failure.field,
            failure.reason,
        )
    if len(failures) > len(shown):
        log.warning("sync %r: %d more invalid rows", spec.name, len(failures) - len(shown))
