"""The tables of sync state, and `pendo_sync_state`, the view that reads them as one table.

Per destination and sync (a scope, numbered in `pendo_sync_scopes`), `pendo_sync_records`
holds what Pendo last accepted per record key: the payload hash as 16 bytes, the write that
recorded it (`pendo_sync_writes`: run id and time, one row per state transaction) and, where a
sync keeps them, the payload. A scope's `changes` counts its state transactions, in commit
order (each takes the scope's row lock to count); `pendo_sync_partition_fingerprints` holds,
per scope and partition, the fingerprint of the rows of the last run that left nothing to do
and the count it was taken at (see `partition_fingerprints`).

One B-tree per record on SQLite (WITHOUT ROWID, keyed by scope number and key): the layout
before this one repeated destination and sync name in a table and again in its primary-key
index, five times the bytes per record, and writing them was the largest single cost of a
first sync. `pendo_sync_leases` holds which run is syncing a
partition to a destination right now.
"""

from __future__ import annotations

import sqlalchemy as sa

from pendo_assets.sync.record.failure_store import metadata as shared_metadata

STATE_VIEW = "pendo_sync_state"
SUPPORTED_DIALECTS = ("sqlite", "postgresql")
DESTINATION_LENGTH = 300
SYNC_NAME_LENGTH = 200
RECORD_KEY_LENGTH = 512
HASH_BYTES = 16  # a payload hash: blake2b, 16 bytes (32 hex characters in Python)

scope_table = sa.Table(
    "pendo_sync_scopes",
    shared_metadata,
    sa.Column("scope_id", sa.Integer, primary_key=True, autoincrement=True),
    # Where records were accepted: base URL + one-way fingerprint of the credential.
    sa.Column("destination", sa.String(DESTINATION_LENGTH), nullable=False),
    sa.Column("sync_name", sa.String(SYNC_NAME_LENGTH), nullable=False),
    # State transactions that wrote records of this scope (NULL: none since the column came).
    sa.Column("changes", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("destination", "sync_name", name="pendo_sync_scopes_destination_sync"),
)

write_table = sa.Table(
    "pendo_sync_writes",
    shared_metadata,
    sa.Column("write_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope_id", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
)

record_table = sa.Table(
    "pendo_sync_records",
    shared_metadata,
    sa.Column("scope_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("record_key", sa.String(RECORD_KEY_LENGTH), primary_key=True),
    sa.Column("payload_hash", sa.LargeBinary(HASH_BYTES), nullable=False),
    sa.Column("write_id", sa.Integer, nullable=False),
    sa.Column("payload", sa.Text, nullable=True),
    sqlite_with_rowid=False,
)

lease_table = sa.Table(
    "pendo_sync_leases",
    shared_metadata,
    sa.Column("destination", sa.String(DESTINATION_LENGTH), primary_key=True),
    sa.Column("sync_name", sa.String(SYNC_NAME_LENGTH), primary_key=True),
    sa.Column("partition_key", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),  # the run id, for messages
    sa.Column("token", sa.String(64), nullable=False),  # unique per acquisition: the fence
    sa.Column("acquired_at", sa.Float, nullable=False),  # epoch seconds, database clock
    sa.Column("expires_at", sa.Float, nullable=False),
)

fingerprint_table = sa.Table(
    "pendo_sync_partition_fingerprints",
    shared_metadata,
    sa.Column("scope_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("partition_key", sa.String(200), primary_key=True),
    sa.Column("digest", sa.String(32), nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("superseded", sa.BigInteger, nullable=False),  # rows of an id a later row replaced
    sa.Column("changes", sa.BigInteger, nullable=False),  # the scope's count when it was taken
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
)

STATE_TABLES = (scope_table, write_table, record_table, lease_table, fingerprint_table)


def hex_of(dialect: str, column: str) -> str:
    """SQL for the lowercase hex text of a bytes column (how Python spells a hash)."""
    return f"lower(hex({column}))" if dialect == "sqlite" else f"encode({column}, 'hex')"


def state_view_sql(dialect: str) -> str:
    """`pendo_sync_state`: one row per record with its destination, sync, hash as hex, run and
    time, for people and tools that query the state."""
    return (
        f"CREATE VIEW {STATE_VIEW} AS SELECT s.destination, s.sync_name, r.record_key, "
        f"{hex_of(dialect, 'r.payload_hash')} AS payload_hash, r.payload, w.run_id, "
        f"w.accepted_at FROM {record_table.name} r "
        f"JOIN {scope_table.name} s ON s.scope_id = r.scope_id "
        f"LEFT JOIN {write_table.name} w ON w.write_id = r.write_id"
    )


def check_dialect(engine: sa.Engine) -> None:
    """Refuse an unsupported state database before anything is sent, not after."""
    if engine.dialect.name not in SUPPORTED_DIALECTS:
        raise StateDatabaseError(
            f"the sync state database must be SQLite or PostgreSQL, not {engine.dialect.name}"
        )


class StateDatabaseError(RuntimeError):
    """The state database cannot hold sync state (wrong dialect, not writable)."""
