"""The budget of a destination shared by every process of one host, in a private directory.

With SQLite state every run of a code location runs on one host, so a file per destination
(rate) and one small SQLite database (visitor pacing) are shared by all of them. Both hold
CLOCK_MONOTONIC readings, which every process of a Linux host shares; a reading from before a
reboot is recognised by being implausibly far ahead and ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import os
import sqlite3
import struct
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

from pendo_assets.client.rate_limit import (
    MAX_PAUSE_SECONDS,
    Release,
    check_rate,
    no_release,
    once,
    pause_seconds,
)
from pendo_assets.client.send_schedule import MAX_WINDOW_SENDS, SendSchedule

from .private_directory import private_directory, remove_stale_files
from .visitor_pacing import CLAIM_HOLD_SECONDS, retry_after

PACING_DATABASE = "visitor_pacing.sqlite3"
_PACING_KEPT_SECONDS = 3600.0
_SCHEDULE_MAGIC = b"pendo-send-schedule-1\n"  # then doubles: next turn, last writes
_NEXT_AT = struct.Struct("d")  # the first double: the next turn (or the end of a pause)
_NEXT_AT_END = len(_SCHEDULE_MAGIC) + _NEXT_AT.size
#: The largest schedule file: one read of this many bytes takes it whole, with no fstat first.
_SCHEDULE_MAX_BYTES = len(_SCHEDULE_MAGIC) + 8 * (1 + MAX_WINDOW_SENDS)


def _file_name(destination: str) -> str:
    return "rate-" + hashlib.sha256(destination.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class HostRateLimiter:
    """Keeps every process of the host to one destination's send schedule (`send_schedule`).

    An exclusive `flock` on the destination's file serialises the senders; the file holds the
    schedule (monotonic times). The lock is held while waiting and until the request is
    written, so sends leave at their own slots (no burst of late wakers). Without a cap a
    sender only reads the file (a shared lock) for a pause, and holds nothing while it sends.
    The file stays open for the limiter's life.
    """

    def __init__(
        self,
        path: Path,
        max_per_second: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = path
        self._interval = check_rate(max_per_second)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> Release:
        if not self._interval:
            self._wait_out_pause()
            return no_release
        with contextlib.ExitStack() as held:
            held.enter_context(self._lock)
            held.enter_context(self._locked())
            while True:  # read again after a sleep: a pause may have come meanwhile
                schedule, size = self._read()
                turn_at = schedule.turn()
                if (wait := turn_at - self._clock()) <= 0:
                    break
                self._sleep(wait)
            admitted_at = self._clock()
            turn = held.pop_all()  # still held: the caller's release lets both go

        def release() -> None:
            with turn:
                schedule.sent(turn_at, admitted_at, self._clock())
                self._write(schedule, size)

        return once(release)

    def _wait_out_pause(self) -> None:
        """No cap: no turn to keep, so no lock is held over a send; only a pause (or the turn
        of a capped run of the same destination) holds the sender back."""
        while True:
            with self._locked(fcntl.LOCK_SH):
                data = os.pread(self._fd, _NEXT_AT_END, 0)  # the next turn alone
            if len(data) < _NEXT_AT_END or not data.startswith(_SCHEDULE_MAGIC):
                return  # new, of the release before, or cut short: no pause
            wait = _NEXT_AT.unpack_from(data, len(_SCHEDULE_MAGIC))[0] - self._clock()
            if wait <= 0 or wait > MAX_PAUSE_SECONDS:  # over, or written before a reboot
                return
            self._sleep(wait)

    def pause(self, seconds: float) -> None:
        with self._locked():  # the pause starts once it holds the lock, not before
            until = self._clock() + pause_seconds(seconds)
            schedule, size = self._read()
            if until > schedule.next_at:
                schedule.next_at = until
                self._write(schedule, size)

    def close(self) -> None:
        os.close(self._fd)

    @contextlib.contextmanager
    def _locked(self, operation: int = fcntl.LOCK_EX) -> Iterator[None]:
        fcntl.flock(self._fd, operation)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _read(self) -> tuple[SendSchedule, int]:
        """The schedule in the file and the bytes read; a fresh schedule for a new file, a file
        of the release before (the next time as text), one cut short or one written before a
        reboot (times implausibly far ahead)."""
        interval = self._interval
        data = os.pread(self._fd, _SCHEDULE_MAX_BYTES + 1, 0)
        if (
            not data.startswith(_SCHEDULE_MAGIC)
            or (len(data) - len(_SCHEDULE_MAGIC)) % 8
            or len(data) > _SCHEDULE_MAX_BYTES
        ):
            return SendSchedule(interval), len(data)  # new, of the release before, cut short
        times = array("d", data[len(_SCHEDULE_MAGIC) :])
        next_at, recent = (times[0], times[1:]) if times else (-math.inf, ())
        latest = max(next_at, recent[-1]) if recent else next_at  # writes are kept in order
        if latest - self._clock() > MAX_PAUSE_SECONDS + interval:
            return SendSchedule(interval), len(data)  # written before a reboot
        return SendSchedule(interval, next_at, recent), len(data)

    def _write(self, schedule: SendSchedule, size: int) -> None:
        """Over the schedule read (`size` bytes); the write itself marks the file in use (its
        mtime), so no stale-file sweep removes it."""
        times = array("d", (schedule.next_at,))
        times.extend(schedule.recent)
        record = _SCHEDULE_MAGIC + times.tobytes()
        os.pwrite(self._fd, record, 0)
        if len(record) < size:
            os.ftruncate(self._fd, len(record))


# Takes the visitor unless its row says it is taken (free later, but not implausibly far
# ahead: a time from before a reboot); RETURNING gives a row only if it was taken now.
_CLAIM = (
    "INSERT INTO pacing VALUES (?1, ?2, ?3 + ?4) ON CONFLICT (destination, visitor) "
    "DO UPDATE SET free_at = excluded.free_at "
    "WHERE NOT (pacing.free_at > ?3 AND pacing.free_at <= ?3 + 2 * ?4) RETURNING 1"
)


class HostVisitorPacing:
    """Visitor claims of one destination in a SQLite database of the private directory."""

    def __init__(
        self,
        path: Path,
        destination: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.destination = destination
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")  # a lost claim only costs a pacing wait
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS pacing (destination TEXT NOT NULL, visitor TEXT NOT NULL,"
            " free_at REAL NOT NULL, PRIMARY KEY (destination, visitor)) WITHOUT ROWID"
        )
        now = self._clock()
        self._db.execute(
            "DELETE FROM pacing WHERE free_at < ? OR free_at > ?",
            (now - _PACING_KEPT_SECONDS, now + 2 * CLAIM_HOLD_SECONDS),
        )

    def claim(self, visitor: str) -> float:
        """One statement (one write transaction) takes a free visitor; only a taken one costs
        a second query, for how long it stays taken."""
        with self._lock:
            while True:
                now = self._clock()
                params = (self.destination, visitor, now, CLAIM_HOLD_SECONDS)
                taken = self._db.execute(_CLAIM, params).fetchall()
                if taken:
                    return 0.0
                row = self._db.execute(
                    "SELECT free_at FROM pacing WHERE destination = ? AND visitor = ?",
                    (self.destination, visitor),
                ).fetchone()
                if row is not None and row[0] > now:
                    return retry_after(row[0] - now)
                # Released between the two statements: claim again.

    def release(self, visitor: str, free_in: float) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE pacing SET free_at = ? WHERE destination = ? AND visitor = ?",
                (self._clock() + free_in, self.destination, visitor),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


class HostBudget:
    """Rate limiters and visitor pacing shared by the processes of this host."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = private_directory(directory or os.environ.get("PENDO_BUDGET_DIR"))
        remove_stale_files(self.directory)
        self._opened: list[HostRateLimiter] = []

    def limiter(self, destination: str, max_per_second: float | None) -> HostRateLimiter:
        limiter = HostRateLimiter(self.directory / _file_name(destination), max_per_second)
        self._opened.append(limiter)
        return limiter

    def pacing(self, destination: str) -> HostVisitorPacing:
        return HostVisitorPacing(self.directory / PACING_DATABASE, destination)

    def close(self) -> None:
        for limiter in self._opened:
            limiter.close()
        self._opened.clear()
