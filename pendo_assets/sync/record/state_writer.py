"""Records what Pendo accepted from one thread, so senders never queue on the state database.

Sixteen senders each opening a write transaction per batch wait in line for SQLite's single
writer (measured: most of a first sync's threads sat in that line). Here senders hand their
accepted rows over and go on; one writer thread gathers hand-overs into one transaction until
it holds `MAX_ROWS` rows or `QUEUED_BATCHES` hand-overs, or the first has waited
`GATHER_SECONDS` (a transaction's fixed cost, a few statements, was most of the writer's CPU
when it wrote each hand-over as it came: measured 683 transactions a million rows). A full
hand-over queue makes senders wait (memory stays bounded). A
failed write stops the sync: `problem()` says why, and senders check it before each request.
Metadata writes are idempotent upserts, so rows accepted but not yet written when a process
is killed are only sent again by the next run.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Collection, Iterable, Sized

from pendo_assets.sync.deliver.outcome import brief
from pendo_assets.sync.record.partition_lease import PartitionLease
from pendo_assets.sync.record.state_store import AcceptedRow, StateScope

MAX_ROWS = 20_000  # rows per transaction at most
QUEUED_BATCHES = 64  # hand-overs waiting at most before senders wait; at most one transaction's
GATHER_SECONDS = 0.2  # the longest a hand-over waits for others to share its transaction


class StateWriter:
    def __init__(self, scope: StateScope, run_id: str, lease: PartitionLease | None) -> None:
        self._scope = scope
        self._run_id = run_id
        self._lease = lease
        self._queue: queue.Queue[Collection[AcceptedRow] | None] = queue.Queue(
            maxsize=QUEUED_BATCHES
        )
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pendo-state-writer", daemon=True)
        self._thread.start()

    def put(self, accepted: Iterable[AcceptedRow]) -> None:
        """Hand rows over; a collection is kept as given until written (`AcceptedRows` builds
        no tuple per row before that)."""
        if self.error is None:
            rows = accepted if isinstance(accepted, Sized) else list(accepted)
            self._queue.put(rows)

    def problem(self) -> str | None:
        """Why sending must stop, once a write failed."""
        if self.error is None:
            return None
        cause = brief(getattr(self.error, "orig", None) or self.error)
        return f"could not record accepted records in sync state: {cause}"

    def close(self) -> BaseException | None:
        """Write what is still waiting; the first error, if any write failed."""
        self._queue.put(None)
        self._thread.join()
        return self.error

    def _run(self) -> None:
        closing = False
        while not closing:
            first = self._queue.get()
            if first is None:
                return
            batch, rows = [first], len(first)
            deadline = time.monotonic() + GATHER_SECONDS
            while rows < MAX_ROWS and len(batch) < QUEUED_BATCHES:
                try:
                    more = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                    break
                batch.append(more)
                rows += len(more)
            if self.error is None:
                try:
                    self._scope.record_parts(self._run_id, batch, lease=self._lease)
                except Exception as error:  # sent but not remembered: the sync must stop
                    self.error = error
