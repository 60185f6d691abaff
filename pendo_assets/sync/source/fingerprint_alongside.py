"""A partition's fingerprint worked out on a second connection while the rows are read.

A run that reads the rows anyway (a first sync, a full refresh) keeps the partition's
fingerprint for the next run. Taken on the reading connection, it could only follow the read,
and its database work (about a second a million rows) then stood at the end of the run.
Here the reading transaction exports its snapshot (``pg_export_snapshot``), and a second
connection imports it (``SET TRANSACTION SNAPSHOT``) and fingerprints in a thread of its own:
the same rows as the read, whatever commits meanwhile, with the work overlapping the sync's.

The digest depends on the session settings that shape a value's text; the second connection
comes from the same engine, and its fingerprint is used only if its settings are the reading
connection's. Where any of this is not possible (not PostgreSQL, an export refused), the caller
fingerprints after the read on the reading connection, as before.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pendo_assets.database_urls import error_reason
from pendo_assets.sync.source.partition_fingerprint import (
    REASON_LIMIT,
    PartitionFingerprint,
    partition_fingerprint,
    text_settings,
)

log = logging.getLogger(__name__)

#: What PostgreSQL's snapshot names look like (hex words and dashes): never SQL to inject.
_SNAPSHOT_NAME = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+")
EXPORT_SNAPSHOT = "SELECT pg_export_snapshot()"
CANCEL_AGAIN_SECONDS = 0.1


@dataclass(frozen=True)
class _Asked:
    """What the second connection fingerprints, and under which snapshot and settings."""

    snapshot: str
    settings: list[str]
    columns: list[sa.ColumnElement[Any]]
    where: sa.ColumnElement[bool]
    seed: str


class FingerprintAlongside:
    """The fingerprint being worked out in a thread; `result` waits for it."""

    def __init__(self, engine: sa.Engine, asked: _Asked) -> None:
        self._found: PartitionFingerprint | None = None
        self._dbapi_connection: Any = None
        self._lock = threading.Lock()
        self._cancelled = False
        self._thread = threading.Thread(
            target=self._work, args=(engine, asked), name="pendo-fingerprint", daemon=True
        )
        self._thread.start()

    @classmethod
    def start(
        cls,
        engine: sa.Engine,
        conn: sa.Connection,
        columns: list[sa.ColumnElement[Any]],
        where: sa.ColumnElement[bool],
        seed: str,
    ) -> FingerprintAlongside | None:
        """Started from the reading connection ``conn`` (PostgreSQL, REPEATABLE READ, its
        snapshot already taken), or None where its snapshot cannot be shared. An export the
        server refuses aborts the reading transaction: it is rolled back, so the read then
        starts a new one (and a new snapshot), which the caller's own fingerprint shares."""
        if conn.dialect.name != "postgresql":  # nor is there a fingerprint to take after it
            return None
        try:
            with conn.begin_nested():  # a setting the server lacks must not abort the read
                settings = text_settings(conn)
        except sa.exc.DBAPIError:
            return None  # the caller's own fingerprint meets the same error and says so
        try:
            snapshot = conn.exec_driver_sql(EXPORT_SNAPSHOT).scalar_one()
        except sa.exc.DBAPIError as error:
            reason = error_reason(error, engine.url, REASON_LIMIT)
            log.info("snapshot not shared, fingerprint after the read: %s", reason)
            conn.rollback()
            return None
        if not isinstance(snapshot, str) or not _SNAPSHOT_NAME.fullmatch(snapshot):
            return None
        return cls(engine, _Asked(snapshot, settings, columns, where, seed))

    def result(self) -> PartitionFingerprint | None:
        """The fingerprint, once worked out (None where it could not be)."""
        self._thread.join()
        return self._found

    def cancel(self) -> None:
        """Stop the database's work (the read was abandoned) and wait for the thread. A cancel
        that reaches the server between two statements stops nothing, so it is sent again
        until the thread is done."""
        with self._lock:
            self._cancelled = True
        while self._thread.is_alive():
            with self._lock:
                dbapi_connection = self._dbapi_connection
            if dbapi_connection is not None:
                _cancel_query(dbapi_connection)
            self._thread.join(CANCEL_AGAIN_SECONDS)

    def _work(self, engine: sa.Engine, asked: _Asked) -> None:
        try:
            with engine.connect() as other:
                other.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
                with self._lock:
                    if self._cancelled:
                        return
                    self._dbapi_connection = other.connection.dbapi_connection
                # The first statement of the transaction: it then sees the reading snapshot.
                other.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{asked.snapshot}'")
                self._found = partition_fingerprint(
                    other,
                    asked.columns,
                    asked.where,
                    asked.seed,
                    expected_settings=asked.settings,
                    cancelled=lambda: self._cancelled,
                )
        except sa.exc.SQLAlchemyError as error:
            if not self._cancelled:
                reason = error_reason(error, engine.url, REASON_LIMIT)
                log.warning("no partition fingerprint (the rows are read): %s", reason)
        finally:
            with self._lock:
                self._dbapi_connection = None


def _cancel_query(dbapi_connection: Any) -> None:
    """Ask the server to cancel what the connection runs (psycopg 3 or psycopg2)."""
    cancel = getattr(dbapi_connection, "cancel_safe", None) or getattr(
        dbapi_connection, "cancel", None
    )
    if cancel is None:
        return
    try:
        cancel()
    except Exception as error:  # best effort: the caller waits for the thread either way
        log.debug("could not cancel the fingerprint query: %s", error)
