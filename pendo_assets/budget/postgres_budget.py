"""The budget of a destination in PostgreSQL: one for every run, process and host.

The rate is a single row per destination holding its send schedule (`send_schedule`: the next
turn and the last writes' times), on the database's clock. A sender takes the destination's
advisory lock (PostgreSQL grants it first come, first served, across every host), sleeps
until its turn while holding it, writes its request, moves the schedule on, commits, and only
then lets go. Measured in the
scale demo (cap 40, ten runs on two cores): booking slots ahead and sleeping outside any lock
gave a busiest second of 43; unlocking inside the statement that moves the time let the next
sender read the old time before the commit (114 sends within 2 ms of another's, 45-50 in a
second). A session that dies frees its lock. A pause (429 with
Retry-After) sets `paused_until`, which the lock holder reads before it sends. Visitor claims
are rows too, taken and released with one statement each.

The tables are UNLOGGED: nothing in them outlives a few seconds' use, so they skip the WAL
and its flush on every commit (a crash of the database server empties them, which frees every
claim at once). Statements go through the driver's cursor in autocommit, not SQLAlchemy's
execution layer: it is paid on every request.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from pendo_assets.client.rate_limit import (
    Release,
    check_rate,
    no_release,
    once,
    pause_seconds,
)
from pendo_assets.client.send_schedule import (
    CATCH_UP_INTERVALS,
    slot_of,
    window_sends,
    window_span,
)

from .visitor_pacing import CLAIM_HOLD_SECONDS, retry_after

RATE_TABLE = "pendo_rate_budget"
PACING_TABLE = "pendo_visitor_pacing"
_SETUP_LOCK = 0x70656E646F  # "pendo": one advisory lock serialises table creation
_POOL_SIZE = 4  # connections a process keeps; sender threads take turns on them

_WRITTEN_AT = "written_at TIMESTAMPTZ[] NOT NULL DEFAULT '{}'"  # the window guard's writes
_SETUP = (
    f"CREATE UNLOGGED TABLE IF NOT EXISTS {RATE_TABLE} (destination TEXT PRIMARY KEY, "
    f"next_at TIMESTAMPTZ NOT NULL, paused_until TIMESTAMPTZ, {_WRITTEN_AT})",
    f"CREATE UNLOGGED TABLE IF NOT EXISTS {PACING_TABLE} (destination TEXT NOT NULL, "
    "visitor_id TEXT NOT NULL, free_at TIMESTAMPTZ NOT NULL, "
    "PRIMARY KEY (destination, visitor_id))",
    f"DELETE FROM {PACING_TABLE} WHERE free_at < clock_timestamp() - interval '1 hour'",
    # A table of the release before gains the column. Checked first: ALTER TABLE locks the
    # table out for every sender even when the column is there, and runs start all the time.
    f"""DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = '{RATE_TABLE}'::regclass
                       AND attname = 'written_at' AND NOT attisdropped) THEN
            ALTER TABLE {RATE_TABLE} ADD COLUMN {_WRITTEN_AT};
        END IF;
    END $$""",
)
# Parameters in the pyformat style both psycopg 3 and psycopg2 take. GREATEST skips NULLs.
_LOCK = "SELECT pg_advisory_lock(hashtextextended(%(destination)s, 0))"
# The turn (NULL for a new destination) and the time now, as epoch seconds.
_UNTIL_TURN = f"""
    SELECT EXTRACT(EPOCH FROM greatest(
               b.next_at, b.paused_until,
               CASE WHEN cardinality(b.written_at) >= %(window)s
                    THEN b.written_at[1] + make_interval(secs => %(span)s) END))::float8,
           EXTRACT(EPOCH FROM clock_timestamp())::float8
    FROM (SELECT 1) AS now LEFT JOIN {RATE_TABLE} AS b ON b.destination = %(destination)s
"""
# Two statements: an unlock inside the UPSERT's own statement would let the next sender read
# the time before the UPSERT commits (measured: 114 sends within 2 ms of another's).
# `send_schedule.next_turn` and `SendSchedule.sent`, with the slot worked out by the sender.
_ADMIT = f"""
    INSERT INTO {RATE_TABLE} AS b (destination, next_at, written_at)
    VALUES (%(destination)s, greatest(
                to_timestamp(%(slot)s) + make_interval(secs => %(interval)s),
                clock_timestamp() + make_interval(secs => %(interval)s - %(catch_up)s)),
            ARRAY[clock_timestamp()])
    ON CONFLICT (destination) DO UPDATE
    SET next_at = EXCLUDED.next_at,
        written_at = (b.written_at || clock_timestamp())[
            greatest(cardinality(b.written_at) + 2 - %(window)s, 1):]
"""
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%(destination)s, 0))"
# No cap: only the pause (NULL for none or a new destination) and the time now.
_PAUSED_UNTIL = f"""
    SELECT EXTRACT(EPOCH FROM b.paused_until)::float8,
           EXTRACT(EPOCH FROM clock_timestamp())::float8
    FROM (SELECT 1) AS now LEFT JOIN {RATE_TABLE} AS b ON b.destination = %(destination)s
"""
_PAUSE = f"""
    INSERT INTO {RATE_TABLE} AS b (destination, next_at, paused_until)
    VALUES (%(destination)s, clock_timestamp() + make_interval(secs => %(seconds)s),
            clock_timestamp() + make_interval(secs => %(seconds)s))
    ON CONFLICT (destination) DO UPDATE
    SET next_at = greatest(b.next_at, EXCLUDED.next_at),
        paused_until = greatest(b.paused_until, EXCLUDED.paused_until)
"""
_CLAIM = f"""
    INSERT INTO {PACING_TABLE} AS p (destination, visitor_id, free_at)
    VALUES (%(destination)s, %(visitor)s, clock_timestamp() + make_interval(secs => %(hold)s))
    ON CONFLICT (destination, visitor_id) DO UPDATE SET free_at = EXCLUDED.free_at
    WHERE p.free_at <= clock_timestamp()
    RETURNING 0.0
"""
_WAIT = f"""
    SELECT EXTRACT(EPOCH FROM free_at - clock_timestamp())::float8 FROM {PACING_TABLE}
    WHERE destination = %(destination)s AND visitor_id = %(visitor)s
"""
_RELEASE = f"""
    UPDATE {PACING_TABLE} SET free_at = clock_timestamp() + make_interval(secs => %(free_in)s)
    WHERE destination = %(destination)s AND visitor_id = %(visitor)s
"""


class BudgetUnavailable(RuntimeError):
    """The PostgreSQL budget could not be read or written (the sync stops, retryable)."""


class _ConnectionLost(BudgetUnavailable):
    """The connection broke: the statement may be tried again on a fresh one."""


class _Connections:
    """Driver connections in autocommit, from a small SQLAlchemy pool of the budget's own.

    No pre-ping (it would double the round trips): a connection found broken is dropped and
    the statement tried once more on a fresh one. A repeated statement that had taken effect
    costs a wasted slot (booking) or a visitor held until its claim expires (claim): rare.
    """

    def __init__(self, url: sa.URL) -> None:
        self.engine = sa.create_engine(url, pool_size=_POOL_SIZE, max_overflow=0, pool_timeout=120)
        dbapi = self.engine.dialect.loaded_dbapi
        self._broken = (dbapi.OperationalError, dbapi.InterfaceError)

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """One connection's cursor for several statements (a session-level lock); a broken
        connection is dropped, its locks die with it on the server."""
        connection = self.engine.raw_connection()
        try:
            connection.driver_connection.autocommit = True  # type: ignore[union-attr]
            with contextlib.closing(connection.cursor()) as cursor:
                yield cursor
        except self._broken as error:
            connection.invalidate()
            raise _ConnectionLost(_describe(error)) from None
        except BudgetUnavailable:
            raise
        except Exception as error:
            connection.invalidate()  # a lock may be held: never hand this session out again
            raise BudgetUnavailable(_describe(error)) from None
        finally:
            connection.close()

    def one(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row `sql` returns (None if none, or if it returns no rows); tried once
        more on a fresh connection if the first one was broken."""
        for attempt in (1, 2):
            try:
                with self.session() as cursor:
                    cursor.execute(sql, params)
                    return cursor.fetchone() if cursor.description else None
            except _ConnectionLost:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()


def _describe(error: Exception) -> str:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"the Pendo budget in PostgreSQL failed: {type(error).__name__}: {first_line}"


class PostgresRateLimiter:
    """Keeps every sender to a destination to its send schedule, under its advisory lock."""

    def __init__(
        self,
        connections: _Connections,
        destination: str,
        max_per_second: float | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.destination = destination
        self._interval = interval = check_rate(max_per_second)
        self._connections = connections
        self._sleep = sleep
        # One sender of this process in the database's queue at a time: one connection.
        self._lock = threading.Lock()
        self._key: dict[str, Any] = {  # the statements' parameters, the same for every send
            "destination": destination,
            "interval": interval,
            "catch_up": interval * CATCH_UP_INTERVALS,
            # No cap: a window of the last write, over when it was written.
            "window": window_sends(interval) or 1,
            "span": window_span(interval),
        }

    def acquire(self) -> Release:
        interval, key = self._interval, self._key
        if not interval:
            self._wait_out_pause()
            return no_release
        with contextlib.ExitStack() as held:
            held.enter_context(self._lock)
            cursor = held.enter_context(self._connections.session())
            cursor.execute(_LOCK, key)
            cursor.fetchall()
            while True:  # a pause may come while this sender sleeps: read again after
                cursor.execute(_UNTIL_TURN, key)
                turn_at, now = cursor.fetchone()
                if turn_at is None or turn_at <= now:
                    break
                self._sleep(turn_at - now)
            slot = now if turn_at is None else slot_of(turn_at, now, interval)
            turn = held.pop_all()  # session and lock still held: the caller's release ends them

        def release() -> None:
            with turn:  # an error here drops the session, and the server frees its lock
                cursor.execute(_ADMIT, {**key, "slot": slot})  # committed before the lock goes
                cursor.execute(_UNLOCK, key)
                cursor.fetchall()

        return once(release)

    def _wait_out_pause(self) -> None:
        """No cap: no turn to keep, so no lock over a send; one read of the pause per send."""
        while True:
            row = self._connections.one(_PAUSED_UNTIL, self._key)
            assert row is not None  # the LEFT JOIN always gives one row
            paused_until, now = row
            if paused_until is None or paused_until <= now:
                return
            self._sleep(paused_until - now)

    def pause(self, seconds: float) -> None:
        self._connections.one(
            _PAUSE, {"destination": self.destination, "seconds": pause_seconds(seconds)}
        )


class PostgresVisitorPacing:
    """Visitor claims of one destination as rows; the row lock decides between two claimers."""

    def __init__(self, connections: _Connections, destination: str) -> None:
        self.destination = destination
        self._connections = connections

    def claim(self, visitor: str) -> float:
        key = {"destination": self.destination, "visitor": visitor}
        if self._connections.one(_CLAIM, {**key, "hold": CLAIM_HOLD_SECONDS}) is not None:
            return 0.0
        row = self._connections.one(_WAIT, key)
        return max(retry_after(float(row[0]) if row else 0.0), 0.001)

    def release(self, visitor: str, free_in: float) -> None:
        self._connections.one(
            _RELEASE, {"destination": self.destination, "visitor": visitor, "free_in": free_in}
        )

    def close(self) -> None:
        """The connections belong to the budget."""


class PostgresBudget:
    """Rate limiters and visitor pacing in (unlogged) tables of the state database."""

    def __init__(self, url: sa.URL | str) -> None:
        self._connections = _Connections(sa.make_url(url))
        with self._connections.engine.begin() as connection:
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SETUP_LOCK})
            for statement in _SETUP:
                connection.exec_driver_sql(statement)

    def limiter(self, destination: str, max_per_second: float | None) -> PostgresRateLimiter:
        return PostgresRateLimiter(self._connections, destination, max_per_second)

    def pacing(self, destination: str) -> PostgresVisitorPacing:
        return PostgresVisitorPacing(self._connections, destination)

    def close(self) -> None:
        self._connections.dispose()
