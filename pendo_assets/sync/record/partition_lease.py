"""One run per sync partition and destination at a time: a lease row in the state database.

The lease is taken before anything is sent, renewed while the run works and released at the
end. A second run waits for it (bounded) and then reads the state the first run left, so it
never sends what the first sent. A lease left by a killed run expires after `ttl_seconds`.
Every state write checks the lease is still this run's (a fence), so a run that stalled past
its lease and was taken over stops instead of writing over the newer run.

Times come from the database's clock on PostgreSQL (one clock for every host) and from this
host's clock on SQLite (one host).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pendo_assets.sync.record.state_store import LeaseLost, StateStore
from pendo_assets.sync.record.state_tables import lease_table

logger = logging.getLogger("pendo_assets.sync")


@dataclass(frozen=True)
class LeaseSettings:
    ttl_seconds: float = 120.0  # a killed run's lease frees up after this long
    wait_seconds: float = 900.0  # how long a second run waits for the first
    poll_seconds: float = 2.0


class PartitionBusy(RuntimeError):
    """Another run kept the partition for longer than this run would wait."""


def _db_now(connection: sa.Connection) -> float:
    if connection.dialect.name == "postgresql":
        return float(
            connection.execute(sa.text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one()
        )
    return time.time()


class PartitionLease:
    """The claim of one run on one sync partition at one destination."""

    def __init__(
        self,
        store: StateStore,
        *,
        destination: str,
        sync_name: str,
        partition_key: str | None,
        holder: str,
        settings: LeaseSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.destination = destination
        self.sync_name = sync_name
        self.partition_key = partition_key or ""
        self.holder = holder[:200]
        self.settings = settings or LeaseSettings()
        self.token = secrets.token_hex(16)
        self.acquired_at: float | None = None  # database clock, epoch seconds
        self.waited_seconds = 0.0
        self._sleep = sleep
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost = False

    def _key(self) -> list[sa.ColumnElement[bool]]:
        t = lease_table.c
        return [
            t.destination == self.destination,
            t.sync_name == self.sync_name,
            t.partition_key == self.partition_key,
        ]

    def describe(self) -> str:
        return f"sync {self.sync_name!r} partition {self.partition_key or '(none)'}"

    # -- acquire -------------------------------------------------------------------------------

    def acquire(self) -> PartitionLease:
        """Take the lease, waiting for another run's to end or expire; `PartitionBusy` if not."""
        self.store.ensure_tables(self.destination)
        started = time.monotonic()
        deadline = started + self.settings.wait_seconds
        announced = False
        while True:
            holder, remaining = self._try_take()
            if holder is None:
                self.waited_seconds = time.monotonic() - started
                self._start_renewer()
                return self
            if not announced:
                logger.warning(
                    "%s is being synced by run %s (its lease runs %.0fs more); waiting up to %.0fs",
                    self.describe(),
                    holder,
                    remaining,
                    self.settings.wait_seconds,
                )
                announced = True
            left = deadline - time.monotonic()
            if left <= 0:
                raise PartitionBusy(
                    f"{self.describe()} is being synced to {self.destination} by run {holder}; "
                    f"waited {self.settings.wait_seconds:.0f}s for it to finish. Nothing was "
                    "sent by this run; run it again later (it will send only what is still "
                    "missing)."
                )
            self._sleep(min(self.settings.poll_seconds, left))

    def _try_take(self) -> tuple[str | None, float]:
        """(None, 0) when taken; else (the holder's run id, seconds its lease has left)."""
        ttl = self.settings.ttl_seconds
        with self.store.write_transaction() as connection:
            now = _db_now(connection)
            row = {
                "destination": self.destination,
                "sync_name": self.sync_name,
                "partition_key": self.partition_key,
                "holder": self.holder,
                "token": self.token,
                "acquired_at": now,
                "expires_at": now + ttl,
            }
            insert = (
                postgresql.insert(lease_table)
                if connection.dialect.name == "postgresql"
                else sqlite.insert(lease_table)
            )
            # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
            inserted = connection.execute(
                insert.values(row).on_conflict_do_nothing().returning(lease_table.c.token)
            ).first()
            if inserted is not None:
                self.acquired_at = now
                return None, 0.0
            previous = connection.execute(
                sa.select(lease_table.c.holder, lease_table.c.expires_at).where(*self._key())
            ).first()
            taken = connection.execute(
                sa.update(lease_table)
                .where(*self._key(), lease_table.c.expires_at <= now)
                .values(holder=self.holder, token=self.token, acquired_at=now, expires_at=now + ttl)
            ).rowcount
            if taken == 1:
                self.acquired_at = now
                if previous is not None:
                    logger.warning(
                        "%s: run %s's lease had expired (the run was killed or stalled); "
                        "taking over",
                        self.describe(),
                        previous.holder,
                    )
                return None, 0.0
            if previous is None:  # released between the insert and the select: try again
                return "(a run that just finished)", 0.0
            return previous.holder, max(0.0, previous.expires_at - now)

    # -- keep ----------------------------------------------------------------------------------

    def confirm(self, connection: sa.Connection) -> None:
        """Inside a state write: extend the lease, or raise `LeaseLost` if it is not ours."""
        now = _db_now(connection)
        extended = connection.execute(
            sa.update(lease_table)
            .where(*self._key(), lease_table.c.token == self.token)
            .values(expires_at=now + self.settings.ttl_seconds)
        ).rowcount
        if extended != 1:
            self.lost = True
            raise LeaseLost(self.lost_message())

    def lost_message(self) -> str:
        return (
            f"{self.describe()}: this run's lease expired and another run took the partition "
            "over; stopped so as not to send what that run sends"
        )

    def _renew(self) -> None:
        with self.store.write_transaction() as connection:
            self.confirm(connection)

    def _start_renewer(self) -> None:
        interval = max(0.05, self.settings.ttl_seconds / 3)

        def renew_until_stopped() -> None:
            while not self._stop.wait(interval):
                try:
                    self._renew()
                except LeaseLost as error:
                    logger.error("%s", error)
                    return
                except Exception as error:  # a blip of the database: the next turn may work
                    logger.warning("%s: could not renew the lease: %r", self.describe(), error)

        self._renewer = threading.Thread(
            target=renew_until_stopped, name="pendo-lease-renewer", daemon=True
        )
        self._renewer.start()

    # -- release -------------------------------------------------------------------------------

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        if self.acquired_at is None:
            return
        try:
            with self.store.write_transaction() as connection:
                connection.execute(
                    sa.delete(lease_table).where(*self._key(), lease_table.c.token == self.token)
                )
        except Exception as error:  # it expires on its own; never hide the run's own outcome
            logger.warning("%s: could not release the lease: %r", self.describe(), error)
        self.acquired_at = None

    def __enter__(self) -> PartitionLease:
        return self if self.acquired_at is not None else self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
