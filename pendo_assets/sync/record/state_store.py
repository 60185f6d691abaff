"""Sync state: per destination, sync and record key, what Pendo last accepted (`state_tables`).

A row is written only after Pendo confirmed the record, one transaction per write, so a crash
at any point leaves the state true: at worst a record Pendo accepted is not yet recorded and is
sent again (idempotent for metadata, see `state_writer`; for events, at most the ones in flight
at the crash and one batch of acknowledgements, see `acknowledgements`).
State is kept per destination (base URL + a fingerprint of the credential), so the same syncs
pointed at another Pendo send everything there.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pendo_assets.batching import chunks
from pendo_assets.sync.record.failure_store import metadata as shared_metadata
from pendo_assets.sync.record.packed_hashes import Hashes, hex_list, packed, pick
from pendo_assets.sync.record.partition_fingerprints import count_change
from pendo_assets.sync.record.state_tables import (
    HASH_BYTES,
    STATE_TABLES,
    check_dialect,
    hex_of,
    record_table,
    scope_table,
    write_table,
)
from pendo_assets.sync.record.state_upgrade import upgrade_state
from pendo_assets.sync.record.table_setup import create_tables_safely

if TYPE_CHECKING:
    from .partition_lease import PartitionLease

# Longer keys are stored as their hash: ids of any length work, and the primary key stays small.
MAX_PLAIN_KEY = 200
LOOKUP_CHUNK = 20_000  # keys per lookup query
WRITE_CHUNK = 20_000  # rows per statement
LEGACY_EVENT_KEY_PREFIX = "h:"  # content-hash event keys, written before event identity keys
_WAL_ATTEMPTS = 40  # about 40 s of waiting in all


def state_engine(url: str) -> sa.Engine:
    """An engine for the state database.

    SQLite gets WAL (readers never block the writer) and real transactions: the driver's own
    handling would commit DDL and reads outside them. `engine.execution_options(immediate=True)`
    starts a transaction that takes the write lock at once (leases, migrations).
    """
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(connection: object, _record: object) -> None:
        connection.isolation_level = None  # type: ignore[attr-defined]
        cursor = connection.cursor()  # type: ignore[attr-defined]
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")  # survives a killed process, not power loss
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get("immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _use_wal(cursor: Any) -> None:
    """Switch a new database file to WAL once; the mode then stays with the file.

    Switching needs the file to itself, and the busy timeout does not cover it: two runs opening
    a fresh state database at once would see "database is locked". So look first, and retry.
    """
    for attempt in range(_WAL_ATTEMPTS):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == _WAL_ATTEMPTS - 1:
                raise  # a read-only file, say: waiting cannot help
            time.sleep(0.05 * (attempt + 1))


def stored_key(record_key: str) -> str:
    """The key as stored: itself when short, else a fixed-length hash of it."""
    if len(record_key) <= MAX_PLAIN_KEY:
        return record_key
    digest = hashlib.sha256(record_key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest}"


def _as_stored(keys: Sequence[str]) -> tuple[list[str], bool]:
    """The keys as stored, and whether that is the keys themselves (none beyond the plain
    length: the common case, checked in C)."""
    if not keys or max(map(len, keys)) <= MAX_PLAIN_KEY:
        return list(keys), True
    return list(map(stored_key, keys)), False


class Accepted(NamedTuple):
    """One record Pendo confirmed: its key, its payload hash and (metadata only) the payload.

    A named tuple: one is built per delivered row, at a third of a frozen dataclass's cost.
    """

    record_key: str
    payload_hash: str
    payload: str | None = None


# An `Accepted`, or a plain tuple of its three fields (cheaper to build, in bulk paths).
AcceptedRow = tuple[str, str, str | None]


class AcceptedRows:
    """Accepted rows as positions into one chunk's keys, hashes (one run: `packed_hashes`) and
    payloads: each row is picked out only as it is written, not kept waiting in a queue (fewer
    objects for the garbage collector to walk while a partition streams by)."""

    __slots__ = ("hashes", "indexes", "keys", "payloads")

    def __init__(
        self,
        keys: Sequence[str],
        hashes: Hashes,
        payloads: Sequence[str] | None,
        indexes: list[int],
    ) -> None:
        self.keys, self.payloads, self.indexes = keys, payloads, indexes
        self.hashes = packed(hashes, len(keys))

    def __len__(self) -> int:
        return len(self.indexes)

    def columns(self) -> tuple[list[str], bytes, list[str | None]]:
        """Keys, hashes (one run) and payloads of these rows, each built in C."""
        indexes = self.indexes
        keys = list(map(self.keys.__getitem__, indexes))
        hashes = pick(self.hashes, indexes)
        if self.payloads is None:
            return keys, hashes, [None] * len(indexes)
        return keys, hashes, list(map(self.payloads.__getitem__, indexes))

    def __iter__(self) -> Iterator[AcceptedRow]:
        keys, hashes, payloads = self.columns()
        return zip(keys, hex_list(hashes), payloads, strict=True)


def _columns_of_parts(
    parts: Iterable[Iterable[AcceptedRow]],
) -> tuple[list[str], bytes, list[str | None]]:
    """The keys (as stored), hashes (one run) and payloads of every part; a key accepted twice
    keeps its last hash and payload (one statement may not upsert a row twice on PostgreSQL).
    A hash that is not 32 hex characters is refused here, before any transaction."""
    keys: list[str] = []
    runs: list[bytes] = []
    payloads: list[str | None] = []
    for part in parts:
        if isinstance(part, AcceptedRows):
            k, h, p = part.columns()
        else:
            rows = list(part)
            k, p = [r[0] for r in rows], [r[2] for r in rows]
            h = packed([r[1] for r in rows], len(rows))
        keys += k
        runs.append(h)
        payloads += p
    keys, _ = _as_stored(keys)
    hashes = b"".join(runs)
    if len(set(keys)) < len(keys):
        last = {key: i for i, key in enumerate(keys)}
        kept = sorted(last.values())
        keys = [keys[i] for i in kept]
        hashes = pick(hashes, kept)
        payloads = [payloads[i] for i in kept]
    return keys, hashes, payloads


class Changes(NamedTuple):
    """Indexes of the keys Pendo never accepted, and of those accepted with another hash."""

    new: list[int]
    changed: list[int]


class LeaseLost(RuntimeError):
    """This run's claim on the partition expired and another run took it: stop sending."""


class StateStore:
    """Reads and writes the sync state (and its leases) on SQLite or PostgreSQL."""

    def __init__(self, engine: sa.Engine) -> None:
        check_dialect(engine)
        self.engine = engine
        self._ready = False
        self._migrated: set[str] = set()
        # SQLite allows one writer at a time; serialising this process's writers avoids
        # "database is locked" between our own threads. PostgreSQL needs no such lock.
        self._write_lock: AbstractContextManager[object] | None = (
            threading.Lock() if engine.dialect.name == "sqlite" else None
        )

    def ensure_tables(self, destination: str) -> None:
        """Create missing tables (safe under concurrent first runs) and upgrade old state."""
        if not self._ready:
            create_tables_safely(self.engine, STATE_TABLES)
            self._ready = True
        if destination not in self._migrated:
            upgrade_state(self.engine, destination)
            self._migrated.add(destination)

    def scope(self, destination: str, sync_name: str) -> StateScope:
        """The state of one sync at one destination."""
        self.ensure_tables(destination)
        return StateScope(self, destination, sync_name, self._scope_id(destination, sync_name))

    def _scope_id(self, destination: str, sync_name: str) -> int:
        """The number of a destination and sync, given it on first use (race-safe)."""
        t = scope_table.c
        find = sa.select(t.scope_id).where(t.destination == destination, t.sync_name == sync_name)
        with self.engine.connect() as connection:
            found = connection.execute(find).scalar()
        if found is not None:
            return int(found)
        sqlite = self.engine.dialect.name == "sqlite"
        insert = sqlite_insert if sqlite else postgresql_insert
        add = insert(scope_table).values(destination=destination, sync_name=sync_name)
        with self.write_transaction() as connection:
            connection.execute(add.on_conflict_do_nothing())
            return int(connection.execute(find).scalar_one())

    @contextmanager
    def write_transaction(self) -> Iterator[sa.Connection]:
        """A transaction that takes SQLite's write lock at once (no busy snapshot later)."""
        lock = self._write_lock or nullcontext()
        with lock, self.engine.execution_options(immediate=True).begin() as connection:
            yield connection


class StateScope:
    """What one sync has delivered to one destination (`scope_id`: their number)."""

    def __init__(self, store: StateStore, destination: str, sync_name: str, scope_id: int) -> None:
        self.store = store
        self.destination = destination
        self.sync_name = sync_name
        self.scope_id = scope_id
        # The scope's change counts this object's own writes made (see `state_tables`).
        self.own_changes: set[int] = set()

    def known(self, keys: Sequence[str]) -> dict[str, str]:
        """The payload hash last accepted per key (absent keys were never accepted).

        Plain strings, not a record per key: a partition's lookups build a million of them,
        and tuple subclasses stay tracked by the garbage collector (measured: a named tuple
        per key cost 1.7 s per million keys, three quarters of it in collections).
        """
        return self._lookup(keys, "payload_hash")

    def payloads(self, keys: Sequence[str]) -> dict[str, str]:
        """The payload last accepted per key, where one was kept (dry-run previews)."""
        return self._lookup(keys, "payload")

    def _lookup(self, keys: Sequence[str], column: str) -> dict[str, str]:
        """One query per `LOOKUP_CHUNK` keys: the keys go in as one JSON array and the answer
        comes back as one JSON object (key -> value), so neither side handles a row at a time
        in Python (and sqlite3 does not give up the GIL and wait for it again per row)."""
        wanted, plain = _as_stored(keys)
        sql = _lookup_sql(self.store.engine.dialect.name, column)
        found: dict[str, str] = {}
        # Straight through the driver's cursor: SQLAlchemy's result machinery costs more than
        # this query.
        with (
            self.store.engine.connect() as connection,
            closing(connection.connection.cursor()) as cursor,
        ):
            for chunk in chunks(wanted, LOOKUP_CHUNK):
                params = (self.scope_id, _JSON.encode(chunk))
                answer = _fetch(connection, cursor, sql, params)[0][0]
                if answer:  # PostgreSQL's aggregate of no rows is NULL
                    found.update(json.loads(answer) if isinstance(answer, str) else answer)
        if plain:
            return found
        by_stored = dict(zip(wanted, keys, strict=True))
        return {by_stored[stored]: value for stored, value in found.items()}

    def changes(self, keys: Sequence[str], hashes: Hashes) -> Changes:
        """Which of `keys` Pendo never accepted, and which it accepted with another hash than
        the one given beside it (indexes into `keys`); the rest are unchanged.

        The database compares: keys go in as one JSON array and hashes as one run of bytes per
        `LOOKUP_CHUNK` keys, and only the indexes of new and changed keys come back, as text.
        An unchanged chunk answers two NULLs: no hash crosses into Python, none is decoded
        (returning every stored hash as a JSON object cost about twice the lookup itself).
        """
        run = packed(hashes, len(keys))
        wanted, _ = _as_stored(keys)
        sql = _changes_sql(self.store.engine.dialect.name)
        new: list[int] = []
        changed: list[int] = []
        with (
            self.store.engine.connect() as connection,
            closing(connection.connection.cursor()) as cursor,
        ):
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                end = start + LOOKUP_CHUNK
                block = wanted[start:end]
                params = (
                    run[start * HASH_BYTES : end * HASH_BYTES],
                    _JSON.encode(block),
                    self.scope_id,
                )
                found, absent, differing = _fetch(connection, cursor, sql, params)[0]
                # None stored (a first sync): every key is new, no list to take apart.
                new += range(start, start + len(block)) if not found else _indexes(absent, start)
                changed += _indexes(differing, start)
        return Changes(new, changed)

    def is_empty(self) -> bool:
        """Whether nothing was ever recorded for this sync and destination."""
        t = record_table.c
        statement = sa.select(t.record_key).where(t.scope_id == self.scope_id).limit(1)
        with self.store.engine.connect() as connection:
            return connection.execute(statement).first() is None

    def has_legacy_event_keys(self) -> bool:
        """Whether events were recorded under content-hash keys (before event identity keys)."""
        t = record_table.c
        statement = (
            sa.select(t.record_key)
            .where(t.scope_id == self.scope_id, t.record_key.like(f"{LEGACY_EVENT_KEY_PREFIX}%"))
            .limit(1)
        )
        with self.store.engine.connect() as connection:
            return connection.execute(statement).first() is not None

    def record(
        self,
        run_id: str,
        accepted: Iterable[AcceptedRow],
        *,
        lease: PartitionLease | None = None,
    ) -> int:
        """Upsert what Pendo confirmed in one transaction; returns how many rows were written.

        With a `lease`, the write happens only while the lease is still this run's: a run whose
        claim expired and was taken over must stop, not overwrite the newer run's state.
        """
        return self.record_parts(run_id, [accepted], lease=lease)

    def record_parts(
        self,
        run_id: str,
        parts: Iterable[Iterable[AcceptedRow]],
        *,
        lease: PartitionLease | None = None,
    ) -> int:
        """`record` of several hand-overs in one transaction (the state writer's)."""
        keys, hashes, payloads = _columns_of_parts(parts)
        if not keys:
            return 0
        with self.store.write_transaction() as connection:
            if lease is not None:
                lease.confirm(connection)
            write_id = connection.execute(
                sa.insert(write_table)
                .values(scope_id=self.scope_id, run_id=run_id, accepted_at=datetime.now(UTC))
                .returning(write_table.c.write_id)
            ).scalar_one()
            upsert = _set_upsert(connection, self.scope_id, write_id)
            for start in range(0, len(keys), WRITE_CHUNK):
                end = start + WRITE_CHUNK
                upsert(
                    keys[start:end],
                    hashes[start * HASH_BYTES : end * HASH_BYTES],
                    payloads[start:end],
                )
            # Last, so the scope's row lock is held only until the commit right after.
            self.own_changes.add(count_change(connection, self.scope_id))
        return len(keys)

    def count(self) -> int:
        t = record_table.c
        with self.store.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).where(t.scope_id == self.scope_id)
            ).scalar_one()


def _lookup_sql(dialect: str, column: str) -> str:
    """The stored `column` of the keys in one JSON array parameter, as one JSON object (a hash
    as the hex text Python compares)."""
    table = record_table.name
    value = hex_of(dialect, column) if column == "payload_hash" else column
    if dialect == "sqlite":
        return (
            f"SELECT json_group_object(record_key, {value}) FROM {table} WHERE scope_id = ? "
            f"AND record_key IN (SELECT value FROM json_each(?)) AND {column} IS NOT NULL"
        )
    return (
        f"SELECT json_object_agg(record_key, {value}) FROM {table} WHERE scope_id = %s "
        "AND record_key IN (SELECT json_array_elements_text(%s::json)) "
        f"AND {column} IS NOT NULL"
    )


def _changes_sql(dialect: str) -> str:
    """(how many keys are stored, indexes of absent keys, of keys stored with another hash),
    the indexes as comma-separated text or NULL; parameters: the hashes' bytes, the keys as a
    JSON array, the scope."""
    table = record_table.name
    if dialect == "sqlite":  # json_each numbers elements from 0
        differs = f"r.payload_hash <> substr(?, j.key * {HASH_BYTES} + 1, {HASH_BYTES})"
        return (
            "SELECT count(r.record_key), "
            "group_concat(CASE WHEN r.record_key IS NULL THEN j.key END), "
            f"group_concat(CASE WHEN {differs} THEN j.key END) "
            f"FROM json_each(?) j LEFT JOIN {table} r "
            "ON r.scope_id = ? AND r.record_key = j.value"
        )
    # The hashes once, as a one-row table: each %s is a parameter of its own.
    differs = (
        f"r.payload_hash <> substring(h.b FROM (k.n - 1)::int * {HASH_BYTES} + 1 FOR {HASH_BYTES})"
    )
    return (
        "SELECT count(r.record_key), "
        "string_agg((k.n - 1)::text, ',') FILTER (WHERE r.record_key IS NULL), "
        f"string_agg((k.n - 1)::text, ',') FILTER (WHERE {differs}) "
        "FROM (SELECT %s::bytea AS b) h "
        "CROSS JOIN json_array_elements_text(%s::json) WITH ORDINALITY AS k(value, n) "
        f"LEFT JOIN {table} r ON r.scope_id = %s AND r.record_key = k.value"
    )


def _indexes(text: str | None, offset: int) -> list[int]:
    """`"0,4,7"` (or NULL: none) as indexes, each plus `offset`."""
    if not text:
        return []
    found = map(int, text.split(","))
    return [offset + i for i in found] if offset else list(found)


def _fetch(
    connection: sa.Connection, cursor: Any, sql: str, params: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    """Rows of one query on the driver's cursor; its errors as SQLAlchemy's, as elsewhere."""
    dbapi = connection.dialect.loaded_dbapi
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()  # type: ignore[no-any-return]
    except dbapi.Error as error:
        raise sa.exc.DBAPIError.instance(
            sql, params, error, dbapi.Error, hide_parameters=True, dialect=connection.dialect
        ) from error


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
Upsert = Callable[[list[str], bytes, list[str | None]], None]


def _set_upsert(connection: sa.Connection, scope_id: int, write_id: int) -> Upsert:
    """One statement per block of rows: the keys as one JSON array (built by the C encoder)
    that the database itself takes apart (`json_each` on SQLite, `json_array_elements_text` on
    PostgreSQL), the hashes as one run of bytes cut at the key's position. Payloads, where kept,
    ride with their key as a pair.

    Row by row (`executemany`), sqlite3 binds the parameters of each row holding the GIL and
    gives the GIL up and takes it back around every row's step: beside a busy thread each row
    waited for its turn (measured: a million upserts beside a spinning thread did not finish in
    two minutes). psycopg escapes each element of a list parameter with a regular expression
    (about 10 us a key), so arrays are no way out there.
    """
    sqlite = connection.dialect.name == "sqlite"
    table = record_table.name
    columns = "scope_id, record_key, payload_hash, write_id, payload"
    conflict = (
        "ON CONFLICT (scope_id, record_key) DO UPDATE SET payload_hash = excluded.payload_hash, "
        "write_id = excluded.write_id, payload = excluded.payload"
    )
    if sqlite:  # json_each numbers elements from 0; "WHERE true": SQLite's rule for an upsert
        cut = f"substr(?, key * {HASH_BYTES} + 1, {HASH_BYTES})"
        bare = f"SELECT ?, value, {cut}, ?, NULL FROM json_each(?) WHERE true"
        pairs = (
            f"SELECT ?, json_extract(value, '$[0]'), {cut}, ?, json_extract(value, '$[1]') "
            "FROM json_each(?) WHERE true"
        )
    else:  # WITH ORDINALITY numbers from 1
        cut = f"substring(%s::bytea FROM (k.n - 1)::int * {HASH_BYTES} + 1 FOR {HASH_BYTES})"
        bare = (
            f"SELECT %s, k.value, {cut}, %s, NULL "
            "FROM json_array_elements_text(%s::json) WITH ORDINALITY AS k(value, n)"
        )
        pairs = (
            f"SELECT %s, k.value->>0, {cut}, %s, k.value->>1 "
            "FROM json_array_elements(%s::json) WITH ORDINALITY AS k(value, n)"
        )

    def upsert(keys: list[str], hashes: bytes, payloads: list[str | None]) -> None:
        kept = payloads.count(None) < len(payloads)
        rows = _JSON.encode(list(zip(keys, payloads, strict=True)) if kept else keys)
        sql = f"INSERT INTO {table} ({columns}) {pairs if kept else bare} {conflict}"
        connection.exec_driver_sql(sql, (scope_id, hashes, write_id, rows))

    return upsert


__all__ = [
    "Accepted",
    "AcceptedRow",
    "Changes",
    "LeaseLost",
    "StateScope",
    "StateStore",
    "shared_metadata",
    "state_engine",
    "stored_key",
]
