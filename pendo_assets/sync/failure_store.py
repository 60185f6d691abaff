"""Table `pendo_sync_failures`: every failed row with its reason, where a user can query it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa

from .results import RowFailure

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
    sa.Index("ix_pendo_sync_failures_sync_partition", "sync_name", "partition_key"),
    sa.Index("ix_pendo_sync_failures_record", "sync_name", "record_id"),
)

_INSERT_CHUNK = 5000
# A field can be a bad property name straight from the data, of any length.
_FIELD_LENGTH: int = failures_table.c.field.type.length  # type: ignore[attr-defined]


def _clip(text: str | None, length: int) -> str | None:
    return text if text is None or len(text) <= length else text[: length - 1] + "…"


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of at most `size` items, without materialising the whole input."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class FailureStore:
    """Writes and reads failed rows at the state database (`PENDO_STATE_URL`)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._ready = False

    @classmethod
    def from_url(cls, url: str) -> FailureStore:
        return cls(sa.create_engine(url))

    def ensure_table(self) -> None:
        """Created on first use, so a new state database needs no migration step."""
        if not self._ready:
            metadata.create_all(self.engine, tables=[failures_table], checkfirst=True)
            self._ready = True

    def record(
        self,
        *,
        sync_name: str,
        partition_key: str | None,
        run_id: str,
        failures: Iterable[RowFailure],
        when: datetime | None = None,
    ) -> int:
        """Insert the failures in chunks, in one transaction; return how many were written."""
        self.ensure_table()
        failed_at = when or datetime.now(UTC)
        written = 0
        with self.engine.begin() as connection:
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
                        }
                        for f in chunk
                    ],
                )
                written += len(chunk)
        return written

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

    def resolve_earlier(
        self,
        *,
        sync_name: str,
        partition_key: str | None,
        when: datetime | None = None,
    ) -> int:
        """Mark every failure recorded so far for this partition resolved; call it before
        recording the failures of a run (or of a retried step of the same run).

        A run re-reads and re-judges every row of its partition: a row that fails again gets a
        new failure record from this attempt, so the older records are history. Returns how many.
        """
        self.ensure_table()
        table = failures_table
        statement = (
            sa.update(table)
            .where(
                table.c.sync_name == sync_name,
                table.c.partition_key == partition_key,
                table.c.resolved_at.is_(None),
            )
            .values(resolved_at=when or datetime.now(UTC))
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount

    def unresolved_partitions(self, sync_name: str) -> dict[str | None, tuple[int, datetime]]:
        """Partitions with unresolved failures: how many, and when the latest one failed."""
        self.ensure_table()
        table = failures_table
        statement = (
            sa.select(table.c.partition_key, sa.func.count(), sa.func.max(table.c.failed_at))
            .where(table.c.sync_name == sync_name, table.c.resolved_at.is_(None))
            .group_by(table.c.partition_key)
        )
        with self.engine.connect() as connection:
            return {row[0]: (row[1], row[2]) for row in connection.execute(statement)}
