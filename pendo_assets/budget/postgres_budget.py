"""The budget of a destination in PostgreSQL: one for every run, process and host.

The rate is a single row per destination holding the earliest time of the next send, on the
database's clock: each send books the next slot with one atomic UPSERT (the row lock orders
the bookers, first come first served) and sleeps until it. A pause (429 with Retry-After)
moves that time forward for later bookers, and every booker that slept reads it again before
it sends. Visitor claims are rows too, taken and released with one statement each.

The tables are UNLOGGED: nothing in them outlives a few seconds' use, so they skip the WAL
and its flush on every commit (a crash of the database server empties them, which frees every
claim at once). Statements go through the driver's cursor in autocommit, not SQLAlchemy's
execution layer: it is paid on every request.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from pendo_assets.client.rate_limit import MAX_PAUSE_SECONDS, check_rate

from .visitor_pacing import CLAIM_HOLD_SECONDS, retry_after

RATE_TABLE = "pendo_rate_budget"
PACING_TABLE = "pendo_visitor_pacing"
_SETUP_LOCK = 0x70656E646F  # "pendo": one advisory lock serialises table creation
_POOL_SIZE = 4  # connections a process keeps; sender threads take turns on them

_SETUP = (
    f"CREATE UNLOGGED TABLE IF NOT EXISTS {RATE_TABLE} "
    "(destination TEXT PRIMARY KEY, next_at TIMESTAMPTZ NOT NULL, paused_until TIMESTAMPTZ)",
    f"CREATE UNLOGGED TABLE IF NOT EXISTS {PACING_TABLE} (destination TEXT NOT NULL, "
    "visitor_id TEXT NOT NULL, free_at TIMESTAMPTZ NOT NULL, "
    "PRIMARY KEY (destination, visitor_id))",
    f"DELETE FROM {PACING_TABLE} WHERE free_at < clock_timestamp() - interval '1 hour'",
)
# Parameters in the pyformat style both psycopg 3 and psycopg2 take.
_BOOK = f"""
    INSERT INTO {RATE_TABLE} AS b (destination, next_at)
    VALUES (%(destination)s, clock_timestamp() + make_interval(secs => %(interval)s))
    ON CONFLICT (destination) DO UPDATE
    SET next_at = greatest(b.next_at, clock_timestamp()) + make_interval(secs => %(interval)s)
    RETURNING EXTRACT(EPOCH FROM b.next_at - clock_timestamp())::float8 - %(interval)s
"""
_PAUSE = f"""
    INSERT INTO {RATE_TABLE} AS b (destination, next_at, paused_until)
    VALUES (%(destination)s, clock_timestamp() + make_interval(secs => %(seconds)s),
            clock_timestamp() + make_interval(secs => %(seconds)s))
    ON CONFLICT (destination) DO UPDATE
    SET next_at = greatest(b.next_at, EXCLUDED.next_at),
        paused_until = greatest(b.paused_until, EXCLUDED.paused_until)
"""
_PAUSED = f"""
    SELECT EXTRACT(EPOCH FROM paused_until - clock_timestamp())::float8 FROM {RATE_TABLE}
    WHERE destination = %(destination)s
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

    def one(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row `sql` returns (None if none, or if it returns no rows)."""
        for attempt in (1, 2):
            connection = self.engine.raw_connection()
            try:
                connection.driver_connection.autocommit = True  # type: ignore[union-attr]
                with contextlib.closing(connection.cursor()) as cursor:
                    cursor.execute(sql, params)
                    return cursor.fetchone() if cursor.description else None
            except self._broken as error:
                connection.invalidate()
                if attempt == 2:
                    raise BudgetUnavailable(_describe(error)) from None
            except Exception as error:
                raise BudgetUnavailable(_describe(error)) from None
            finally:
                connection.close()  # back to the pool (or away, if invalidated)
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()


def _describe(error: Exception) -> str:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"the Pendo budget in PostgreSQL failed: {type(error).__name__}: {first_line}"


class PostgresRateLimiter:
    """Books each send's slot in the destination's row and sleeps until it comes."""

    def __init__(
        self,
        connections: _Connections,
        destination: str,
        max_per_second: float | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.destination = destination
        self.max_per_second = max_per_second
        self._interval = check_rate(max_per_second)
        self._connections = connections
        self._sleep = sleep
        self._clock = clock

    def acquire(self) -> float:
        row = self._connections.one(
            _BOOK, {"destination": self.destination, "interval": self._interval}
        )
        wait = float(row[0]) if row else 0.0
        while wait > 0:
            self._sleep(wait)
            # A pause that came while this sender slept towards its slot holds it back too.
            paused = self._connections.one(_PAUSED, {"destination": self.destination})
            wait = float(paused[0]) if paused and paused[0] is not None else 0.0
        return self._clock()

    def pause(self, seconds: float) -> None:
        seconds = min(max(seconds, 0.0), MAX_PAUSE_SECONDS)
        self._connections.one(_PAUSE, {"destination": self.destination, "seconds": seconds})


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
