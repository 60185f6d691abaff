"""Sends prepared track events: a bounded pool, each visitor's events at least a second apart.

Pendo accepts one event per visitor per second. Waiting per visitor (not globally) keeps the
pool busy with other visitors' events; the gap is timed from the previous event's response,
not its send, because that is when Pendo has surely seen it (timing from the send was measured
to produce pacing violations).

A send whose answer was lost (the client says "in doubt") may already be in Pendo. Under the
`resend` policy it goes out again, at most `MAX_IN_DOUBT_RESENDS` more times; under `skip` it is
not sent again and is remembered as delivered, so no later run sends it either. Either way it
is counted, and duplicates in Pendo can never exceed that count.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from pendo_assets.budget.visitor_pacing import VisitorPacing
from pendo_assets.client import (
    FailureKind,
    MissingCredentialError,
    PendoAuthError,
    PendoClient,
    RecordResult,
)
from pendo_assets.sync.deliver.acknowledgements import Acknowledgements
from pendo_assets.sync.deliver.outcome import DeliveryOutcome, brief
from pendo_assets.sync.prepare.track_rows import PreparedEvents

DEFAULT_VISITOR_GAP_SECONDS = 1.05
MAX_IN_DOUBT_RESENDS = 4  # five sends in all, as many as a request's default attempts


def _queues_by_visitor(prepared: PreparedEvents, positions: np.ndarray) -> dict[str, deque[int]]:
    """Each visitor's events to send, in timestamp order."""
    visitors = np.array([prepared.visitor_ids[p] for p in positions], dtype=object)
    stamps = np.array([prepared.timestamps[p] for p in positions], dtype=np.int64)
    queues: dict[str, deque[int]] = {}
    for index in np.lexsort((stamps, visitors.astype(str))):
        queues.setdefault(visitors[index], deque()).append(int(positions[index]))
    return queues


def deliver_events(
    client: PendoClient,
    prepared: PreparedEvents,
    positions: np.ndarray,
    *,
    max_in_flight: int,
    on_accepted: Callable[[list[int]], None] | None = None,
    in_doubt: str = "resend",
    lost: Callable[[], str | None] | None = None,
    visitor_gap_seconds: float = DEFAULT_VISITOR_GAP_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    next_allowed: dict[str, float] | None = None,
    shared_pacing: VisitorPacing | None = None,
) -> DeliveryOutcome:
    """Send the events at `positions`; `on_accepted` hears delivered positions in batches.

    `next_allowed` carries, from one chunk of a partition to the next, the earliest time each
    visitor may send again; it is updated, and visitors free to send are dropped from it.
    With `shared_pacing`, each event's visitor is also claimed there before it goes out and
    released when its answer came, so other runs sending to the destination keep the gap too.
    """
    outcome = DeliveryOutcome(prepared.rows)
    queues = _queues_by_visitor(prepared, positions)
    pacing = {} if next_allowed is None else next_allowed
    order = itertools.count()
    ready: list[tuple[float, int, str]] = [(pacing.get(v, 0.0), next(order), v) for v in queues]
    heapq.heapify(ready)
    condition = threading.Condition()
    in_flight = 0
    resends: dict[int, int] = {}  # position -> in-doubt sends so far

    def next_event() -> tuple[str, int] | None:
        nonlocal in_flight
        with condition:
            while not outcome.aborted:
                if not ready:
                    if in_flight == 0:
                        return None
                    condition.wait()
                    continue
                ready_at, _, visitor = ready[0]
                delay = ready_at - clock()
                if delay > 0:
                    condition.wait(delay)
                    continue
                heapq.heappop(ready)
                in_flight += 1
                return visitor, queues[visitor].popleft()
            return None

    def deferred(visitor: str, position: int, wait: float) -> None:
        """Another run holds the visitor: its event goes back to the front, tried again later."""
        nonlocal in_flight
        with condition:
            in_flight -= 1
            queues[visitor].appendleft(position)
            heapq.heappush(ready, (clock() + wait, next(order), visitor))
            condition.notify_all()

    def finished(visitor: str, again: int | None = None) -> None:
        nonlocal in_flight
        with condition:
            in_flight -= 1
            if again is not None:  # first in its visitor's queue: order and pacing hold
                queues[visitor].appendleft(again)
            allowed = clock() + visitor_gap_seconds
            if queues[visitor]:
                heapq.heappush(ready, (allowed, next(order), visitor))
            else:
                pacing[visitor] = allowed
            condition.notify_all()

    acks = Acknowledgements(on_accepted, outcome) if on_accepted is not None else None

    def remember(position: int) -> None:
        if acks is not None:
            acks.add(position)

    def settle(position: int, result: RecordResult) -> int | None:
        """Fold in one answer; returns the position when it must go out again."""
        if result.kind == FailureKind.IN_DOUBT:
            if in_doubt == "resend" and resends.get(position, 0) < MAX_IN_DOUBT_RESENDS:
                resends[position] = resends.get(position, 0) + 1
                outcome.note_in_doubt()
                return position
            final = _in_doubt_result(result, in_doubt)
            outcome.add(position, final, retryable=in_doubt == "resend")
            if in_doubt == "skip":
                remember(position)  # at most once: no later run sends it either
            return None
        outcome.add(position, result)
        if result.ok:
            remember(position)
        return None

    def claim(visitor: str, position: int) -> bool | None:
        """True when this sender now holds the visitor in the shared pacing, False when it
        need not (no shared pacing, or the sync stopped), None when another run holds it and
        the event went back to wait its turn."""
        if shared_pacing is None or outcome.aborted:
            return False
        try:
            wait = shared_pacing.claim(visitor)
        except Exception as error:  # the shared store is down: stop rather than break pacing
            outcome.abort(f"cannot claim a visitor's pacing: {brief(error)}", error)
            return False
        if wait > 0:
            deferred(visitor, position, wait)
            return None
        return True

    def send(visitor: str, position: int, claimed: bool) -> None:
        again: int | None = None
        try:
            if outcome.stop_if(lost):
                return
            result = client.send_track_event(prepared.event(position))
        except PendoAuthError as error:
            outcome.abort_on_auth(error)
        except MissingCredentialError as error:  # no secret configured: raised below
            outcome.abort(str(error), error)
        except Exception as error:  # a bug must stop the sync, not hang or vanish
            outcome.abort(f"internal error while sending events: {brief(error)}", error)
        else:
            outcome.note_item([result])
            again = settle(position, result)
        finally:
            if claimed and shared_pacing is not None:  # first: the local gap ends after it
                _release(shared_pacing, visitor, visitor_gap_seconds, outcome)
            finished(visitor, again)

    def worker() -> None:
        while (job := next_event()) is not None:
            claimed = claim(*job)
            if claimed is not None:  # None: handed back to another run's turn
                send(*job, claimed)

    threads = [
        threading.Thread(target=worker, name=f"pendo-track-{i}", daemon=True)
        for i in range(max(1, min(max_in_flight, len(queues))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if acks is not None:
        acks.flush()
    now = clock()
    for visitor in [v for v, allowed in pacing.items() if allowed <= now]:
        del pacing[visitor]
    if isinstance(outcome.abort_cause, MissingCredentialError):
        # A configuration error, as for metadata: not a failed (and retryable) delivery.
        raise outcome.abort_cause
    outcome.finish()
    return outcome


def _release(pacing: VisitorPacing, visitor: str, gap: float, outcome: DeliveryOutcome) -> None:
    """Free the visitor for other runs `gap` from now; if that fails, the sync stops (a claim
    left behind only delays that visitor's events elsewhere until it expires)."""
    try:
        pacing.release(visitor, gap)
    except Exception as error:
        outcome.abort(f"cannot record visitor pacing: {brief(error)}", error)


def _in_doubt_result(result: RecordResult, policy: str) -> RecordResult:
    """The row's final failure: what happened, and what this sync's policy does about it."""
    what = (
        "sent again by a later run (in_doubt: resend)"
        if policy == "resend"
        else "never sent again (in_doubt: skip, at most once)"
    )
    return replace(result, reason=f"in doubt: {result.reason}; {what}")
