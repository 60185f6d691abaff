"""Collects per-row delivery results from many threads and decides when to stop sending."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pendo_assets.client import AcceptedRecords, FailureKind, PendoAuthError, RecordResult
from pendo_assets.sync.results import RowFailure, SyncReport

# Failures a later run may fix: Pendo unavailable or overloaded, or an answer that said nothing.
_RETRYABLE_KINDS = frozenset({FailureKind.UNAVAILABLE, FailureKind.BAD_RESPONSE})
# Answers of this kind in a row mean Pendo is down (a lost answer is one too).
_UNAVAILABLE_KINDS = frozenset({FailureKind.UNAVAILABLE, FailureKind.IN_DOUBT})
NOT_IN_PENDO = "not in Pendo (update mode creates nothing); sent again on the next run"


def is_retryable(result: RecordResult) -> bool:
    status = result.status or 0
    return result.kind in _RETRYABLE_KINDS or status in (408, 429) or status >= 500


def brief(error: BaseException, limit: int = 200) -> str:
    """`Type: message`, cut short: an encoder's error can quote a whole batch of rows."""
    if isinstance(error, UnicodeError) and hasattr(error, "reason"):
        # Its message quotes the whole text being encoded: row data, not a reason.
        text = f"{type(error).__name__}: {error.reason} (a value holds text that is not UTF-8)"
    else:
        text = f"{type(error).__name__}: {error}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _what_failed(result: RecordResult) -> str:
    if result.kind == FailureKind.IN_DOUBT:
        return "lost their answer or exhausted their retries"
    return "exhausted their retries"


# This many work items in a row failing with an exhausted retry budget means Pendo is down:
# stop instead of spending the budget again on every remaining batch.
UNAVAILABLE_STREAK_TO_ABORT = 3


class SyncAborted(Exception):
    """The whole sync stopped (bad credentials, Pendo unreachable); rows not sent are failed."""

    def __init__(self, message: str, *, report: SyncReport, retryable: bool) -> None:
        super().__init__(message)
        self.report = report
        self.retryable = retryable  # False when retrying cannot help (refused credentials)


@dataclass
class DeliveryOutcome:
    """Thread-safe verdicts per row position: sent, failed (with why) or not sent at all."""

    rows: int
    sent: np.ndarray = field(init=False)  # bool per row
    retried: np.ndarray = field(init=False)  # bool per row
    failed: dict[int, RowFailure] = field(default_factory=dict)
    not_in_pendo: set[int] = field(default_factory=set)  # update mode: ids Pendo lacks
    in_doubt_sends: int = 0  # track sends whose answer was lost: the most duplicates possible
    abort_reason: str | None = None
    abort_cause: BaseException | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _unavailable_streak: int = 0
    _items: int = 0
    _last_unavailable: str | None = None

    def __post_init__(self) -> None:
        self.sent = np.zeros(self.rows, dtype=bool)
        self.retried = np.zeros(self.rows, dtype=bool)

    @property
    def aborted(self) -> bool:
        return self.abort_reason is not None

    def add(self, position: int, result: RecordResult, *, retryable: bool | None = None) -> None:
        """Fold one record result into its row; a row with several requests needs all to pass."""
        with self._lock:
            if result.kind == FailureKind.IN_DOUBT:
                self.in_doubt_sends += 1
            if result.retried:
                self.retried[position] = True
            if result.ok:
                # Metadata delivery reports a row once every request carrying it passed, so
                # one accepted result is the whole row.
                self.sent[position] = position not in self.failed
            else:
                self.sent[position] = False
                self.failed.setdefault(
                    position,
                    RowFailure(
                        position,
                        result.record_id,
                        result.reason or "failed",
                        field=result.field,
                        http_status=result.status,
                        retryable=is_retryable(result) if retryable is None else retryable,
                    ),
                )

    def accept_all(self, positions: np.ndarray, retried: set[int]) -> None:
        """Rows every request of which Pendo accepted, in one step (no per-row result)."""
        with self._lock:
            failed = [p for p in positions if int(p) in self.failed] if self.failed else []
            self.sent[positions] = True
            if failed:
                self.sent[np.asarray(failed, dtype=np.int64)] = False
            again = [p for p in positions if int(p) in retried] if retried else []
            if again:
                self.retried[np.asarray(again, dtype=np.int64)] = True

    def note_in_doubt(self) -> None:
        """A send whose answer was lost, sent again: it may end up in Pendo twice."""
        with self._lock:
            self.in_doubt_sends += 1

    def skip_not_in_pendo(self, position: int) -> None:
        with self._lock:
            self.not_in_pendo.add(position)

    def note_item(self, results: Sequence[RecordResult]) -> None:
        """Track runs of unavailable work items; enough of them abort the sync."""
        accepted_whole = isinstance(results, AcceptedRecords)
        with self._lock:
            self._items += 1
            if (
                not accepted_whole
                and results
                and all(r.kind in _UNAVAILABLE_KINDS for r in results)
            ):
                self._unavailable_streak += 1
                self._last_unavailable = results[0].reason
                if self._unavailable_streak >= UNAVAILABLE_STREAK_TO_ABORT and not self.aborted:
                    self.abort_reason = (
                        f"Pendo unreachable: {UNAVAILABLE_STREAK_TO_ABORT} requests in a row "
                        f"{_what_failed(results[0])}; last: {results[0].reason}"
                    )
            else:
                self._unavailable_streak = 0

    def finish(self) -> None:
        """After delivery: when every request failed as unavailable, Pendo was down all along.

        A sync too small to reach the streak above must stop (retryably) as well, not report
        success with every row failed.
        """
        with self._lock:
            if not self.aborted and self._items and self._unavailable_streak == self._items:
                self.abort_reason = (
                    f"Pendo unreachable: all {self._items} request(s) exhausted their retries; "
                    f"last: {self._last_unavailable}"
                )

    def abort(self, reason: str, cause: BaseException | None = None) -> None:
        with self._lock:
            if not self.aborted:
                self.abort_reason = reason
                self.abort_cause = cause

    def stop_if(self, lost: Callable[[], str | None] | None) -> bool:
        """Abort when `lost` says why the run may no longer send (its lease was taken over)."""
        why = lost() if lost is not None else None
        if why is not None:
            self.abort(why)
        return self.aborted

    def abort_on_auth(self, error: PendoAuthError) -> None:
        self.abort(str(error), error)
