"""Table `pendo_sync_failures`: every failed row with its reason, where a user can query it.

Each run of a partition records its result in one transaction (`record_run`): its failed rows
go in, and the failures of earlier runs of the partition become history (resolved). Table
`pendo_sync_partition_runs` remembers, per sync and partition, the start of the run whose result
is current, so a run that finishes after a newer one has recorded leaves only history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pendo_assets.batching import chunks
from pendo_assets.sync.record.partition_runs import claim_partition, partition_runs_table
from pendo_assets.sync.record.table_setup import create_tables_safely
from pendo_assets.sync.results import RowFailure

metadata = sa.MetaData()

failures_table = sa.Table(
    "pendo_sync_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sync_name", sa.String(200), nullable=False),
    sa.Column("partition_key", sa.String(64), nullable=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("record_id", sa.Text, nullable=True),
    sa.Column("field", sa.String(200), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    # Added after the first release: tables without it get it on first use (server default).
    sa.Column("retryable", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_pendo_sync_failures_sync_partition", "sync_name", "partition_key"),
    sa.Index("ix_pendo_sync_failures_record", "sync_name", "record_id"),
)

_INSERT_CHUNK = 5000
# A field can be a bad property name straight from the data, of any length.
_FIELD_LENGTH: int = failures_table.c.field.type.length  # type: ignore[attr-defined]


def _clip(text: str | None, length: int) -> str | None:
    return text if text is None or len(text) <= length else text[: length - 1] + "…"


def as_utc(moment: datetime) -> datetime:
    """Aware UTC (naive taken as UTC): SQLite drops a zone without converting the time."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class FailureStore:
    """Writes and reads failed rows at the state database (`PENDO_STATE_URL`)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._ready = False

    def ensure_table(self) -> None:
        """Created, or upgraded, on first use, so a state database needs no migration step;
        safe when several runs do it at once."""
        if not self._ready:
            create_tables_safely(self.engine, [failures_table, partition_runs_table])
            self._ready = True

    def record_run(
        self,
        *,
        sync_name: str,
        partition_key: str | None,
        run_id: str,
        run_started_at: datetime,
        failures: Iterable[RowFailure],
        when: datetime | None = None,
    ) -> int:
        """Record one run's result for its partition, in one transaction; returns how many
        failures were written.

        A run re-reads and re-judges every row of its partition, so its result replaces the
        partition's earlier ones: unresolved failures of the partition are marked resolved and
        this run's are inserted unresolved. Unless a run that started later (`run_started_at`,
        naive is UTC) has already recorded, even with no failures: then this run's failures go
        in already resolved, as history, and nothing else changes. A retried step of the same
        run (same start) replaces the run's own earlier record. An error leaves all as it was.
        """
        self.ensure_table()
        now = as_utc(when or datetime.now(UTC))
        with self.engine.begin() as connection:
            current = claim_partition(
                connection,
                sync_name=sync_name,
                partition_key=partition_key,
                run_id=run_id,
                run_started_at=as_utc(run_started_at),
                now=now,
            )
            if current:
                connection.execute(_resolve(sync_name, partition_key, now))
            return _insert(
                connection,
                sync_name=sync_name,
                partition_key=partition_key,
                run_id=run_id,
                failures=failures,
                failed_at=now,
                resolved_at=None if current else now,
            )

    def query(
        self,
        *,
        sync_name: str | None = None,
        partition_key: str | None = None,
        run_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Failures as dicts, oldest first, filtered by whatever is given."""
        self.ensure_table()
        statement = sa.select(failures_table).order_by(failures_table.c.id)
        for column, value in (
            (failures_table.c.sync_name, sync_name),
            (failures_table.c.partition_key, partition_key),
            (failures_table.c.run_id, run_id),
        ):
            if value is not None:
                statement = statement.where(column == value)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(statement)]

    def unresolved_partitions(
        self, sync_name: str, *, retryable_only: bool = True
    ) -> dict[str | None, tuple[int, datetime]]:
        """Partitions with unresolved failures: how many, and when the latest one failed.

        With `retryable_only` (the retry sensor's view) only failures a later run may fix
        count: a partition whose unresolved failures are all validation failures is left out.
        """
        self.ensure_table()
        table = failures_table
        statement = (
            sa.select(table.c.partition_key, sa.func.count(), sa.func.max(table.c.failed_at))
            .where(table.c.sync_name == sync_name, table.c.resolved_at.is_(None))
            .group_by(table.c.partition_key)
        )
        if retryable_only:
            statement = statement.where(table.c.retryable.is_(True))
        with self.engine.connect() as connection:
            return {row[0]: (row[1], row[2]) for row in connection.execute(statement)}


def _resolve(sync_name: str, partition_key: str | None, when: datetime) -> sa.Update:
    table = failures_table
    return (
        sa.update(table)
        .where(
            table.c.sync_name == sync_name,
            table.c.partition_key == partition_key,  # IS NULL for None
            table.c.resolved_at.is_(None),
        )
        .values(resolved_at=when)
    )


def _insert(
    connection: sa.Connection,
    *,
    sync_name: str,
    partition_key: str | None,
    run_id: str,
    failures: Iterable[RowFailure],
    failed_at: datetime,
    resolved_at: datetime | None,
) -> int:
    """Insert in chunks on `connection` (in its transaction); returns how many."""
    written = 0
    for chunk in chunks(failures, _INSERT_CHUNK):
        connection.execute(
            failures_table.insert(),
            [
                {
                    "sync_name": sync_name,
                    "partition_key": partition_key,
                    "run_id": run_id,
                    "record_id": f.record_id,
                    "field": _clip(f.field, _FIELD_LENGTH),
                    "reason": f.reason,
                    "http_status": f.http_status,
                    "failed_at": failed_at,
                    "resolved_at": resolved_at,
                    "retryable": bool(f.retryable),
                }
                for f in chunk
            ],
        )
        written += len(chunk)
    return written
