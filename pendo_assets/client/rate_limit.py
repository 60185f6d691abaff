"""A destination's requests-per-second budget, as the client sees it.

Pendo limits requests per destination (base URL and credential), not per caller, so the
client asks a `RateBudget` for the limiter of each destination it writes to. The budget
decides how far that limiter is shared: this module's `LocalRateBudget` shares it between the
threads of one process; `pendo_assets.budget` has budgets shared by every process of a host
or, through PostgreSQL, by every host.

A sender holds its turn from the moment it is admitted until its request is on the wire, and
the next turn is timed from its slot and its write (`send_schedule`): a sender late to its
turn or slow to write by less than an interval does not move the turns after it, and no
second holds more sends than the cap.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Protocol

from .send_schedule import SendSchedule

MAX_PAUSE_SECONDS = 300.0  # a Retry-After longer than this is taken as this


Release = Callable[[], None]


class RateLimiter(Protocol):
    """Admits one send at a time to one destination."""

    def acquire(self) -> Release:
        """Wait for this caller's turn and hold it; call the returned function (once) as soon
        as the request is written, or failed to be: the next turn is an interval later."""
        ...

    def pause(self, seconds: float) -> None:
        """Admit nobody for `seconds` from now (Pendo answered 429 with Retry-After)."""
        ...


class RateBudget(Protocol):
    """Hands out the limiter of a destination; one destination, one cap, wherever it is."""

    def limiter(self, destination: str, max_per_second: float | None) -> RateLimiter: ...


def pause_seconds(seconds: float) -> float:
    """A Retry-After as a pause: never negative, at most MAX_PAUSE_SECONDS."""
    return min(max(seconds, 0.0), MAX_PAUSE_SECONDS)


def check_rate(max_per_second: float | None) -> float:
    """The interval between sends for a cap (0.0: no cap)."""
    if max_per_second is not None and max_per_second <= 0:
        raise ValueError("max_requests_per_second must be positive (or None for no cap)")
    return 1.0 / max_per_second if max_per_second else 0.0


class ThreadRateLimiter:
    """Keeps the threads of one process to the send schedule (`send_schedule`).

    The lock is held while waiting and while the request is written, so each caller sends at
    its own slot. A limiter that books future slots and lets callers sleep outside the lock
    lets late wakers go out together: measured here, that releases bursts above the cap.
    """

    def __init__(
        self,
        max_per_second: float | None,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._interval = check_rate(max_per_second)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._schedule = SendSchedule(self._interval) if self._interval else None
        self._paused_until = float("-inf")  # written without the lock: a holder may sleep

    def acquire(self) -> Release:
        schedule = self._schedule
        if schedule is None:  # no cap: only a pause holds senders back
            while (wait := self._paused_until - self._clock()) > 0:
                self._sleep(wait)
            return no_release
        with contextlib.ExitStack() as held:
            held.enter_context(self._lock)
            while (
                wait := (turn_at := max(schedule.turn(), self._paused_until)) - self._clock()
            ) > 0:
                self._sleep(wait)  # a pause that arrives meanwhile is seen on the next turn
            admitted_at = self._clock()
            turn = held.pop_all()  # still held: the caller's release lets it go

        def release() -> None:
            with turn:
                schedule.sent(turn_at, admitted_at, self._clock())

        return once(release)

    def pause(self, seconds: float) -> None:
        until = self._clock() + pause_seconds(seconds)
        self._paused_until = max(self._paused_until, until)


def no_release() -> None:
    """The release of a send no cap holds: nothing was taken."""
    return None


def once(release: Release) -> Release:
    """`release`, callable any number of times, effective the first."""
    lock = threading.Lock()
    done = False

    def release_once() -> None:
        nonlocal done
        with lock:
            if done:
                return
            done = True
        release()

    return release_once


class LocalRateBudget:
    """One limiter per destination, shared by the threads (and clients) of this process."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._limiters: dict[tuple[str, float | None], ThreadRateLimiter] = {}
        self._lock = threading.Lock()

    def limiter(self, destination: str, max_per_second: float | None) -> ThreadRateLimiter:
        with self._lock:
            key = (destination, max_per_second)
            if key not in self._limiters:
                self._limiters[key] = ThreadRateLimiter(
                    max_per_second, clock=self._clock, sleep=self._sleep
                )
            return self._limiters[key]
