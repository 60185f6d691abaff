"""A requests-per-second cap shared by every thread of one client."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Callable


class RateLimiter:
    """Spaces actual sends at least 1/rate apart.

    The lock is held while waiting, so each caller leaves `acquire()` at its own slot and sends
    right away. A limiter that books future slots and lets callers sleep outside the lock lets
    late wakers go out together: measured here, that releases bursts above the cap.
    """

    def __init__(
        self,
        max_per_second: float | None,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        if max_per_second is not None and max_per_second <= 0:
            raise ValueError("max_requests_per_second must be positive (or None for no cap)")
        self.max_per_second = max_per_second
        self._interval = 1.0 / max_per_second if max_per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_allowed = float("-inf")

    def acquire(self) -> float:
        """Wait for this caller's turn; return the clock reading at which it was admitted."""
        if not self._interval:
            return self._clock()
        with self._lock:
            wait = self._next_allowed - self._clock()
            if wait > 0:
                self._sleep(wait)
            admitted = self._clock()
            self._next_allowed = admitted + self._interval
            return admitted


class SharedRateLimiter(RateLimiter):
    """The same spacing across every process that names the same file.

    A Dagster run executes each sync step in its own process; each has its own client, so the
    per-run cap needs one shared record of the last send. An exclusive `flock` on the file
    serialises the processes, and the file holds the monotonic time of the last admitted send
    (CLOCK_MONOTONIC is system-wide on Linux, so processes can compare it).
    """

    def __init__(
        self,
        max_per_second: float,
        path: str,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        super().__init__(max_per_second, clock=clock, sleep=sleep)
        self.path = path

    def acquire(self) -> float:
        with self._lock, open(self.path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
            handle.seek(0)
            text = handle.read().decode() or "-inf"
            wait = float(text) + self._interval - self._clock()
            if wait > 0:
                self._sleep(wait)
            admitted = self._clock()
            handle.seek(0)
            handle.truncate()
            handle.write(repr(admitted).encode())
            handle.flush()
            return admitted
