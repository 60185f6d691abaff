"""The senders of a whole run, shared by its chunks, and a chunk's delivery still under way.

One pool for the run, not one per chunk: a chunk's last requests are still in flight while the
next chunk's first go out. A pool per chunk waited for every answer at each chunk's end, so at
each of a million rows' twenty chunk ends the requests in flight ran down from 16 to none
(a million rows through `dagster asset materialize`: 250,000-row chunks, five such ends, were
0.3-0.6 s faster than 50,000; one pool for the run, 0.6-1.0 s).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import numpy as np

from pendo_assets.sync.deliver.outcome import DeliveryOutcome

WorkItem = np.ndarray  # the row positions of one batch


class SendPool:
    """At most ``max_in_flight`` work items running, whichever chunk they are from, and none
    queued beyond that: bounded memory."""

    def __init__(self, max_in_flight: int) -> None:
        self._max_in_flight = max_in_flight
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="pendo-send")
        self._running: set[Future[None]] = set()

    def submit(self, work: Callable[[WorkItem], None], item: WorkItem) -> Future[None]:
        """Start ``work(item)`` once fewer than ``max_in_flight`` items run."""
        if len(self._running) >= self._max_in_flight:
            self._running = _settle(self._running, FIRST_COMPLETED)
        future = self._pool.submit(work, item)
        self._running.add(future)
        return future

    def close(self) -> None:
        """Wait for what is in flight (its answers are accounted for), then stop the threads."""
        self._pool.shutdown(wait=True)


class Delivery:
    """One chunk's sends, started; ``outcome()`` waits for the last of them."""

    def __init__(
        self, outcome: DeliveryOutcome, futures: list[Future[None]], *, finished: bool = False
    ) -> None:
        self._outcome = outcome
        self._futures = futures
        self._finished = finished

    @property
    def under_way(self) -> bool:
        """Some of its sends may still run (a delivery made by ``done`` never is)."""
        return bool(self._futures)

    @property
    def abort_reason(self) -> str | None:
        """Why it stopped, if it has already (read while its sends may still run)."""
        return self._outcome.abort_reason

    def outcome(self) -> DeliveryOutcome:
        if not self._finished:
            _settle(set(self._futures), ALL_COMPLETED)
            self._outcome.finish()
            self._finished = True
        return self._outcome


def done(outcome: DeliveryOutcome) -> Delivery:
    """A delivery that ran to its end in the caller's thread, its outcome finished there."""
    return Delivery(outcome, [], finished=True)


def _settle(running: set[Future[None]], return_when: str) -> set[Future[None]]:
    """Wait; re-raise programming errors (delivery errors are recorded); return what runs."""
    finished, pending = wait(running, return_when=return_when)
    for future in finished:
        future.result()
    return pending
