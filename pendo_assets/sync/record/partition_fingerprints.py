"""Which partitions need not be read again: their fingerprint, kept after a run left nothing to do.

A metadata sync decides what to send from two things: the partition's rows and what the scope
(destination and sync) has recorded as accepted, which other partitions' runs change too (a
visitor in two days' rows). A fingerprint is kept with the scope's change count at the end of
a run, and only if every change to the scope since that run began was the run's own: then the
rows and the state together are what they were when the run ended. A later run that finds the
same fingerprint at the same count would send nothing, so it need not read the rows at all.

The count is bumped as the last statement of every state transaction that writes records, under
the scope row's lock, so counts follow commit order on PostgreSQL as on SQLite; a run that starts
while another's write is still open sees the older count and will not keep its fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pendo_assets.sync.record.state_tables import fingerprint_table, scope_table

if TYPE_CHECKING:
    from pendo_assets.sync.record.partition_lease import PartitionLease
    from pendo_assets.sync.record.state_store import StateScope
    from pendo_assets.sync.source.partition_fingerprint import PartitionFingerprint


@dataclass(frozen=True)
class KeptFingerprint:
    """A partition's fingerprint, the scope's change count it holds for, and how its rows
    ended: all sent or unchanged except `superseded` (an id's earlier rows)."""

    digest: str
    rows: int
    superseded: int
    changes: int
    run_id: str


def count_change(connection: sa.Connection, scope_id: int) -> int:
    """Count one more state transaction of the scope; its new count (call it last in the
    transaction: it holds the scope row's lock until the commit). Plain driver SQL: it runs
    once per state transaction, and building the statement cost more than running it."""
    mark = "?" if connection.dialect.name == "sqlite" else "%s"
    counted = connection.exec_driver_sql(_COUNT_CHANGE.format(mark=mark), (scope_id,))
    return int(counted.scalar_one())


_COUNT_CHANGE = (
    f"UPDATE {scope_table.name} SET changes = coalesce(changes, 0) + 1 "
    "WHERE scope_id = {mark} RETURNING changes"
)


def change_count(scope: StateScope) -> int:
    """How many state transactions have written records of the scope, committed so far."""
    t = scope_table.c
    with scope.store.engine.connect() as connection:
        found = connection.execute(
            sa.select(t.changes).where(t.scope_id == scope.scope_id)
        ).scalar()
    return int(found or 0)


def kept_fingerprint(scope: StateScope, partition_key: str) -> KeptFingerprint | None:
    t = fingerprint_table.c
    query = sa.select(t.digest, t.row_count, t.superseded, t.changes, t.run_id).where(
        t.scope_id == scope.scope_id, t.partition_key == partition_key
    )
    with scope.store.engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else KeptFingerprint(*row)


def keep_fingerprint(
    scope: StateScope,
    partition_key: str,
    fingerprint: PartitionFingerprint,
    *,
    superseded: int,
    since: int,
    run_id: str,
    lease: PartitionLease | None,
) -> str | None:
    """Keep the partition's fingerprint at the scope's count now, if every change since `since`
    (the count when the run began) was this scope object's own; else why not."""
    t = scope_table.c
    with scope.store.write_transaction() as connection:
        if lease is not None:
            lease.confirm(connection)
        now = connection.execute(sa.select(t.changes).where(t.scope_id == scope.scope_id)).scalar()
        count = int(now or 0)
        foreign = set(range(since + 1, count + 1)) - scope.own_changes
        if foreign:
            return (
                f"{len(foreign)} state write(s) of another run of this sync during this run: "
                "the next run reads the partition"
            )
        values = {
            "scope_id": scope.scope_id,
            "partition_key": partition_key,
            "digest": fingerprint.digest,
            "row_count": fingerprint.rows,
            "superseded": superseded,
            "changes": count,
            "run_id": run_id,
            "taken_at": datetime.now(UTC),
        }
        sqlite = connection.dialect.name == "sqlite"
        insert = (sqlite_insert if sqlite else postgresql_insert)(fingerprint_table).values(values)
        keys = ("scope_id", "partition_key")
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=keys,
                set_={k: insert.excluded[k] for k in values if k not in keys},
            )
        )
    return None
