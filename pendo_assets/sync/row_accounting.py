"""Account: every row of a chunk ends up sent, failed (with why) or skipped in the report."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pandas as pd

from pendo_assets.client import PendoAuthError
from pendo_assets.sync.decide.change_detection import CHANGED_AFTER_DELIVERY, DUPLICATE_EVENT
from pendo_assets.sync.decide.chunk_plan import Plan
from pendo_assets.sync.deliver.outcome import NOT_IN_PENDO, DeliveryOutcome
from pendo_assets.sync.prepare.field_types import MissingFieldsError
from pendo_assets.sync.results import RowFailure, SyncReport
from pendo_assets.sync.spec import SyncSpec

_NOT_UNCHANGED = (DUPLICATE_EVENT, CHANGED_AFTER_DELIVERY)


def account_chunk(
    report: SyncReport, plan: Plan, outcome: DeliveryOutcome, *, dry_run: bool
) -> None:
    """Fold one chunk's verdicts into the partition's report (failures at partition rows)."""
    decision = plan.decision
    skipped = {**plan.skipped, **decision.skipped}
    report.skipped += len(skipped)
    report.skipped_reasons.update(skipped.values())
    decided = Counter(decision.skipped.values())  # counted in C: a re-sync skips every row
    report.skipped_unchanged += sum(n for why, n in decided.items() if why not in _NOT_UNCHANGED)
    report.changed_after_delivery += decided[CHANGED_AFTER_DELIVERY]
    failures = dict(plan.failures)
    to_send = decision.send
    if dry_run:
        # Nothing was sent: the rows that would go out count as skipped for the invariant.
        report.skipped += len(to_send)
        report.skipped_reasons["dry run: not sent"] += len(to_send)
    failures.update(outcome.failed)
    if outcome.not_in_pendo:
        report.not_in_pendo += len(outcome.not_in_pendo)
        report.skipped += len(outcome.not_in_pendo)
        report.skipped_reasons[NOT_IN_PENDO] += len(outcome.not_in_pendo)
    if outcome.aborted:
        # Refused credentials or fields Pendo lacks need a person first, not another run.
        retryable = not isinstance(outcome.abort_cause, PendoAuthError | MissingFieldsError)
        for position in to_send[~outcome.sent[to_send]]:
            p = int(position)
            if p not in failures and p not in outcome.not_in_pendo:
                failures[p] = RowFailure(
                    p, plan.ids[p], f"not sent: {outcome.abort_reason}", retryable=retryable
                )
    report.rows += plan.rows
    report.sent += int(outcome.sent.sum())
    report.retried += int(outcome.retried.sum())
    report.in_doubt += outcome.in_doubt_sends
    report.failures.extend(replace(failures[p], row=p + plan.offset) for p in sorted(failures))
    report.failed += len(failures)


def account_broken_chunk(
    report: SyncReport,
    spec: SyncSpec,
    frame: pd.DataFrame,
    offset: int,
    reason: str,
    *,
    retryable: bool,
) -> None:
    """A chunk that could not be planned (a bug, the state database): every row failed."""
    ids = _row_ids(spec, frame)
    report.rows += len(frame)
    report.failures.extend(
        RowFailure(offset + p, ids[p], reason, retryable=retryable) for p in range(len(frame))
    )
    report.failed += len(frame)


def _row_ids(spec: SyncSpec, frame: pd.DataFrame) -> list[str | None]:
    """Each row's id as text, as far as it can be read; for failure records only."""
    try:
        column = frame[spec.id_column].reset_index(drop=True)
    except Exception:
        return [None] * len(frame)
    return [None if value is None else str(value)[:500] for value in column.tolist()]
