"""One sync of one partition: prepare, send, and account for every row."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pendo_assets.client import PendoAuthError, PendoClient

from .metadata_delivery import deliver_metadata
from .metadata_rows import prepare_metadata
from .outcome import DeliveryOutcome, SyncAborted
from .results import RowFailure, SyncReport
from .spec import SyncSpec
from .track_delivery import deliver_events
from .track_rows import prepare_events

logger = logging.getLogger("pendo_assets.sync")

DEFAULT_MAX_IN_FLIGHT = 16  # measured: see README, "Throughput"


@dataclass(frozen=True)
class SyncOptions:
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    now_ms: int | None = None  # "now" for the 7-day event window; injectable for tests


def run_sync(
    spec: SyncSpec,
    frame: pd.DataFrame,
    client: PendoClient,
    *,
    partition_key: str | None = None,
    options: SyncOptions | None = None,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger] = logger,
) -> SyncReport:
    """Send one partition's rows; raise `SyncAborted` (carrying the report) if the sync stopped."""
    options = options or SyncOptions()
    started = time.perf_counter()
    requests_before = client.stats_snapshot().requests
    frame = frame.reset_index(drop=True)
    report = SyncReport(sync_name=spec.name, partition_key=partition_key, rows=len(frame))

    if spec.is_metadata:
        prepared_md = prepare_metadata(spec, frame)
        failures, sendable, ids = prepared_md.failures, prepared_md.sendable, prepared_md.ids
        report.skipped_reasons.update(prepared_md.skipped.values())
        report.skipped = len(prepared_md.skipped)
        _log_validation(spec, failures, log)
        outcome = deliver_metadata(
            client,
            prepared_md,
            kind=spec.metadata_kind,
            create=spec.mode == "upsert",
            max_in_flight=options.max_in_flight,
        )
    else:
        now_ms = options.now_ms if options.now_ms is not None else int(time.time() * 1000)
        prepared_ev = prepare_events(spec, frame, now_ms=now_ms)
        failures, sendable = prepared_ev.failures, prepared_ev.sendable
        ids = prepared_ev.visitor_ids
        _log_validation(spec, failures, log)
        if prepared_ev.older_than_window:
            warning = (
                f"{prepared_ev.older_than_window} event(s) are older than Pendo's 7-day "
                "processing window: Pendo accepts them but its regular jobs may not process them"
            )
            report.warnings.append(warning)
            log.warning("sync %r partition %s: %s", spec.name, partition_key, warning)
        outcome = deliver_events(client, prepared_ev, max_in_flight=options.max_in_flight)

    _account(report, failures, sendable, ids, outcome)
    report.requests = client.stats_snapshot().requests - requests_before
    report.duration_seconds = time.perf_counter() - started
    report.check_invariant()
    if outcome.aborted:
        raise SyncAborted(
            f"sync {spec.name!r} partition {partition_key} stopped: {outcome.abort_reason} "
            f"({report.sent} sent, {report.failed} failed, {report.skipped} skipped "
            f"of {report.rows} rows)",
            report=report,
            retryable=not isinstance(outcome.abort_cause, PendoAuthError),
        )
    return report


def _account(
    report: SyncReport,
    validation_failures: dict[int, RowFailure],
    sendable: np.ndarray,
    ids: list[str | None],
    outcome: DeliveryOutcome,
) -> None:
    """Every row: sent, failed (validation, Pendo, or never sent after an abort) or skipped."""
    failures = dict(validation_failures)
    failures.update(outcome.failed)
    if outcome.aborted:
        unsent = sendable[~outcome.sent[sendable]]
        for position in unsent:
            p = int(position)
            if p not in failures:
                failures[p] = RowFailure(p, ids[p], f"not sent: {outcome.abort_reason}")
    report.sent = int(outcome.sent.sum())
    report.retried = int(outcome.retried.sum())
    report.failures = [failures[p] for p in sorted(failures)]
    report.failed = len(report.failures)


def _log_validation(
    spec: SyncSpec,
    failures: dict[int, RowFailure],
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> None:
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
