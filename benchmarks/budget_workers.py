"""The sending side of `bench_rate_budget.py`: one process of saturating senders on one limiter.

Each worker is a separate process with a limiter of its own (its own engine or pool), as a
separate Dagster run would have. It waits for the common start, then its threads acquire as
fast as the limiter lets them until the end. It hands back every admission's
`time.monotonic()` reading (CLOCK_MONOTONIC: one clock for every process of a Linux host), its
own CPU time, and the CPU time of the PostgreSQL backends that served it.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OURS_POSTGRES = "ours_postgres"
PYRATE_POSTGRES = "pyrate_postgres"
OURS_HOST = "ours_host"
PAUSE_SECONDS = 1.0
PYRATE_POOL_SIZE = 4  # the Limiter serialises puts per process; one per sender is plenty


@dataclass(frozen=True)
class Job:
    """What every worker process of one measurement does."""

    kind: str  # OURS_POSTGRES, PYRATE_POSTGRES or OURS_HOST
    destination: str  # our destination key; pyrate's table name
    cap: float  # requests a second
    threads: int
    seconds: float
    postgres_url: str  # SQLAlchemy URL whose `options` put the benchmark's schema first
    directory: str  # the host budget's private directory
    pause_after: float | None = None  # worker 0 calls pause(PAUSE_SECONDS) this long in


@dataclass(frozen=True)
class Opened:
    """One limiter, reduced to what the senders call."""

    acquire: Callable[[], object]
    pause: Callable[[float], None] | None
    close: Callable[[], None]
    refusals: list[int] = field(default_factory=lambda: [0])  # False from a blocking acquire


def _backend_ns(pid: int) -> int | None:
    """CPU time a backend has used so far (ns), from /proc: a local server only."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class BackendCpu:
    """CPU time of the PostgreSQL backends this process's connections use.

    The server is shared with other users, so only the backends of our own connections count:
    each from when it connected (or the measurement began) until it closed (or the measurement
    ended). A backend's start-up before the connection is handed over is not seen.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: dict[int, int] = {}
        self._spent = 0
        self.visible = True

    def opened(self, pid: int) -> None:
        now = _backend_ns(pid)
        with self._lock:
            if now is None:
                self.visible = False  # not a process of this host
            else:
                self._since[pid] = now

    def closed(self, pid: int) -> None:
        now = _backend_ns(pid)
        with self._lock:
            since = self._since.pop(pid, None)
            if since is not None and now is not None:
                self._spent += now - since

    def begin(self) -> None:
        with self._lock:
            self._spent = 0
            for pid in list(self._since):
                now = _backend_ns(pid)
                if now is None:
                    del self._since[pid]
                else:
                    self._since[pid] = now

    def seconds(self) -> float | None:
        with self._lock:
            if not self.visible:
                return None
            spent = self._spent
            for pid, since in self._since.items():
                now = _backend_ns(pid)
                spent += (now if now is not None else since) - since
            return spent / 1e9


def _pid_of(connection: Any) -> int | None:
    try:
        return int(connection.info.backend_pid)
    except Exception:  # a broken connection: its backend is gone
        return None


def open_limiter(job: Job, backends: BackendCpu) -> Opened:
    """The limiter under test, set up as its user would: a budget, or pyrate's Limiter."""
    import sqlalchemy as sa

    if job.kind == OURS_POSTGRES:
        from pendo_assets.budget import PostgresBudget

        def connected(connection: Any, _record: Any) -> None:
            if (pid := _pid_of(connection)) is not None:
                backends.opened(pid)

        def closing(connection: Any, _record: Any) -> None:
            if (pid := _pid_of(connection)) is not None:
                backends.closed(pid)

        # On the Pool class: the budget's engine is its own, created below.
        sa.event.listen(sa.pool.Pool, "connect", connected)
        sa.event.listen(sa.pool.Pool, "close", closing)
        budget = PostgresBudget(job.postgres_url)
        limiter = budget.limiter(job.destination, job.cap)
        return Opened(limiter.acquire, limiter.pause, budget.close)
    if job.kind == PYRATE_POSTGRES:
        from psycopg_pool import ConnectionPool
        from pyrate_limiter import Duration, Limiter, PostgresBucket, Rate

        url = sa.make_url(job.postgres_url)
        conninfo = url.set(drivername="postgresql", query={}).render_as_string(False)

        def configure(connection: Any) -> None:
            if (pid := _pid_of(connection)) is not None:
                backends.opened(pid)

        pool = ConnectionPool(
            conninfo,
            kwargs={"options": url.query["options"]},
            min_size=1,
            max_size=PYRATE_POOL_SIZE,
            open=True,
            configure=configure,
        )
        pool.wait()
        rates = [Rate(round(job.cap), Duration.SECOND)]
        limiter = Limiter(PostgresBucket(pool, job.destination, rates))
        refusals = [0]

        def acquire() -> None:
            # A blocking try_acquire should only say False for a weight that can never fit;
            # under lock contention it sometimes does anyway (its "never" sentinel, -1, is
            # also a wait it computes), so a sender has to ask again: counted.
            while not limiter.try_acquire("pendo", blocking=True):
                refusals[0] += 1

        return Opened(acquire, None, limiter.close, refusals)
    if job.kind == OURS_HOST:
        from pendo_assets.budget import HostBudget

        budget = HostBudget(job.directory)
        limiter = budget.limiter(job.destination, job.cap)
        return Opened(limiter.acquire, limiter.pause, budget.close)
    raise ValueError(f"unknown limiter {job.kind!r}")


def run_worker(job: Job, index: int, ready: Any, go: Any, start_at: Any, results: Any) -> None:
    """A worker process: reports on `ready` (index, error), then its result on `results`."""
    started = False

    def announce() -> None:
        nonlocal started
        started = True
        ready.put((index, None))

    try:
        results.put(_measure(job, index, announce, go, start_at))
    except BaseException:
        if started:
            results.put({"index": index, "error": traceback.format_exc()})
        else:
            ready.put((index, traceback.format_exc()))


def _measure(
    job: Job, index: int, announce: Callable[[], None], go: Any, start_at: Any
) -> dict[str, Any]:
    backends = BackendCpu()
    limiter = open_limiter(job, backends)
    try:
        begin = threading.Event()
        window: dict[str, float] = {}
        stamps: list[list[float]] = [[] for _ in range(job.threads)]
        pause_at: list[float] = []
        failures: list[str] = []

        def send(mine: list[float]) -> None:
            begin.wait()
            try:
                while time.monotonic() < window["end"]:
                    release = limiter.acquire()
                    mine.append(time.monotonic())  # the send would be written here
                    if callable(release):  # ours: the turn ends once the request is written
                        release()
            except Exception:
                failures.append(traceback.format_exc())

        def pause() -> None:
            begin.wait()
            assert job.pause_after is not None and limiter.pause is not None
            time.sleep(max(0.0, window["start"] + job.pause_after - time.monotonic()))
            called = time.monotonic()
            limiter.pause(PAUSE_SECONDS)
            pause_at.extend([called, time.monotonic()])

        threads = [threading.Thread(target=send, args=(mine,), daemon=True) for mine in stamps]
        if job.pause_after is not None and index == 0:
            threads.append(threading.Thread(target=pause, daemon=True))
        for thread in threads:
            thread.start()
        announce()
        go.wait()
        window["start"] = start_at.value
        window["end"] = window["start"] + job.seconds
        time.sleep(max(0.0, window["start"] - time.monotonic()))
        cpu = time.process_time()
        backends.begin()
        begin.set()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - window["start"]
        cpu = time.process_time() - cpu
        server = backends.seconds()
    finally:
        limiter.close()
    if failures:
        raise RuntimeError(failures[0])
    return {
        "index": index,
        "start": window["start"],
        "stamps": sorted(stamp for mine in stamps for stamp in mine),
        "cpu_seconds": cpu,
        "server_cpu_seconds": server,
        "wall_seconds": wall,
        "pause": pause_at or None,
        "refusals": limiter.refusals[0],
    }
