"""Table `pendo_sync_state`: per sync and record key, what Pendo last accepted.

A row is written only after Pendo confirmed the record, one transaction per batch, so a crash
at any point leaves the state true: at worst a record Pendo accepted is not yet recorded and is
sent again (idempotent for metadata; for events, at most the ones in flight at the crash).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .failure_store import chunks
from .failure_store import metadata as shared_metadata

state_table = sa.Table(
    "pendo_sync_state",
    shared_metadata,
    sa.Column("sync_name", sa.String(200), primary_key=True),
    sa.Column("record_key", sa.String(512), primary_key=True),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
)


def state_engine(url: str) -> sa.Engine:
    """An engine for the state database; SQLite gets WAL so readers never block the writer."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(connection: object, _record: object) -> None:
        cursor = connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # survives a killed process, not power loss
        cursor.close()

    return engine


LOOKUP_CHUNK = 2000
WRITE_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class Accepted:
    """One record Pendo confirmed: its key, its payload hash and (metadata only) the payload."""

    record_key: str
    payload_hash: str
    payload: str | None = None


@dataclass(frozen=True, slots=True)
class Known:
    payload_hash: str
    payload: str | None


class StateStore:
    """Reads and writes `pendo_sync_state` on SQLite or PostgreSQL."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._ready = False
        # SQLite allows one writer at a time; serialising this process's writers avoids
        # "database is locked" between our own threads.
        self._write_lock = threading.Lock()

    def ensure_table(self) -> None:
        if not self._ready:
            shared_metadata.create_all(self.engine, tables=[state_table], checkfirst=True)
            self._ready = True

    def known(
        self, sync_name: str, keys: Sequence[str], *, with_payloads: bool = False
    ) -> dict[str, Known]:
        """What was last accepted for these keys (absent keys were never accepted)."""
        self.ensure_table()
        columns = [state_table.c.record_key, state_table.c.payload_hash]
        if with_payloads:
            columns.append(state_table.c.payload)
        found: dict[str, Known] = {}
        with self.engine.connect() as connection:
            for chunk in chunks(list(dict.fromkeys(keys)), LOOKUP_CHUNK):
                statement = sa.select(*columns).where(
                    state_table.c.sync_name == sync_name, state_table.c.record_key.in_(chunk)
                )
                for row in connection.execute(statement):
                    found[row[0]] = Known(row[1], row[2] if with_payloads else None)
        return found

    def record(self, sync_name: str, run_id: str, accepted: Iterable[Accepted]) -> int:
        """Upsert what Pendo confirmed, in one transaction; returns how many rows were written."""
        self.ensure_table()
        now = datetime.now(UTC)
        written = 0
        with self._write_lock, self.engine.begin() as connection:
            for chunk in chunks(accepted, WRITE_CHUNK):
                rows = [
                    {
                        "sync_name": sync_name,
                        "record_key": a.record_key,
                        "payload_hash": a.payload_hash,
                        "payload": a.payload,
                        "run_id": run_id,
                        "accepted_at": now,
                    }
                    for a in chunk
                ]
                connection.execute(self._upsert(connection), rows)
                written += len(rows)
        return written

    def _upsert(self, connection: sa.Connection) -> sa.Insert:
        dialect = connection.dialect.name
        if dialect == "postgresql":
            insert = postgresql.insert(state_table)
        elif dialect == "sqlite":
            insert = sqlite.insert(state_table)
        else:
            raise NotImplementedError(f"sync state on {dialect} is not supported yet")
        excluded = insert.excluded
        return insert.on_conflict_do_update(
            index_elements=[state_table.c.sync_name, state_table.c.record_key],
            set_={
                "payload_hash": excluded.payload_hash,
                "payload": excluded.payload,
                "run_id": excluded.run_id,
                "accepted_at": excluded.accepted_at,
            },
        )

    def count(self, sync_name: str) -> int:
        self.ensure_table()
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).where(state_table.c.sync_name == sync_name)
            ).scalar_one()
