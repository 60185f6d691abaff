"""Table `pendo_sync_partition_runs`: per sync and partition, the run whose result is current.

Two runs of one partition can overlap (a schedule, the change sensor, a retry, a backfill), and
the one that started first may finish last. Its rows were read earlier, so its failures must
not replace those of the newer run. The row here holds the start of the newest run that has
recorded, including runs that had no failures, and is written in the same transaction as the
failures, so the two never disagree.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

metadata = sa.MetaData()

partition_runs_table = sa.Table(
    "pendo_sync_partition_runs",
    metadata,
    sa.Column("sync_name", sa.String(200), primary_key=True),
    # "" stands for "no partition": a primary key column cannot be NULL.
    sa.Column("partition_key", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("run_started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


def claim_partition(
    connection: sa.Connection,
    *,
    sync_name: str,
    partition_key: str | None,
    run_id: str,
    run_started_at: datetime,
    now: datetime,
) -> bool:
    """Make this run the partition's current one, unless a run that started later already is.

    Returns whether it is current. Call it first in the transaction that records the run: the
    row stays locked until that commits, so concurrent recorders of one partition take turns,
    and each sees the other's failures once it goes on. Times are aware UTC. The state
    database is SQLite or PostgreSQL (as for `pendo_sync_state`).
    """
    table = partition_runs_table
    values = {
        "sync_name": sync_name,
        "partition_key": partition_key or "",
        "run_id": run_id,
        "run_started_at": run_started_at,
        "recorded_at": now,
    }
    upsert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    insert = upsert(table).values(**values)
    statement = insert.on_conflict_do_update(
        index_elements=[table.c.sync_name, table.c.partition_key],
        set_={
            "run_id": insert.excluded.run_id,
            "run_started_at": insert.excluded.run_started_at,
            "recorded_at": insert.excluded.recorded_at,
        },
        # Not newer: the row stays as it is and nothing is returned.
        where=table.c.run_started_at <= insert.excluded.run_started_at,
    ).returning(table.c.run_id)
    return connection.execute(statement).first() is not None
