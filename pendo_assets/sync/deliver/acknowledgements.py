"""Delivered events, recorded in small batches instead of one state transaction each.

One transaction per event paced the whole sending pool on the state database's latency (and,
on SQLite, on one process-wide writer lock). Acknowledgements are gathered and written
`max_batch` at a time, or once the oldest has waited `max_wait_seconds`, and always at the end.
The price is in the crash bound: a run killed with SIGKILL can leave up to `max_batch` delivered
events unrecorded (besides those in flight), which a re-run sends again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pendo_assets.sync.deliver.outcome import DeliveryOutcome, brief

ACK_BATCH = 50
ACK_WAIT_SECONDS = 0.2


class Acknowledgements:
    """Collects delivered positions from many threads; `record` writes one batch of them."""

    def __init__(
        self,
        record: Callable[[list[int]], None],
        outcome: DeliveryOutcome,
        *,
        max_batch: int = ACK_BATCH,
        max_wait_seconds: float = ACK_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._record = record
        self._outcome = outcome
        self._max_batch = max_batch
        self._max_wait = max_wait_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: list[int] = []
        self._oldest = 0.0

    def add(self, position: int) -> None:
        with self._lock:
            if not self._pending:
                self._oldest = self._clock()
            self._pending.append(position)
            due = (
                len(self._pending) >= self._max_batch
                or self._clock() - self._oldest >= self._max_wait
            )
            batch = self._take() if due else []
        if batch:
            self._write(batch)

    def flush(self) -> None:
        """Write whatever is pending (at the end of delivery, also after an abort)."""
        with self._lock:
            batch = self._take()
        if batch:
            self._write(batch)

    def _take(self) -> list[int]:
        batch, self._pending = self._pending, []
        return batch

    def _write(self, batch: list[int]) -> None:
        try:
            self._record(batch)
        except Exception as error:  # sent but not remembered: stop, do not go on
            # A later run sends these again: count them with the sends that may duplicate.
            for _ in batch:
                self._outcome.note_in_doubt()
            cause = brief(getattr(error, "orig", None) or error)
            self._outcome.abort(f"could not record delivered events: {cause}", error)
