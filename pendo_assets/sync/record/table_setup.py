"""Creating and upgrading the state database's own tables when several processes start at once.

`create_all(checkfirst=True)` checks, then creates, with no lock: two runs starting together on
a fresh database both see no table, and the loser fails ("table ... already exists" on SQLite,
a unique violation on `pg_type` on PostgreSQL). Here the loser checks again and goes on, so the
first runs of a backfill need no migration step and no ordering.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

import sqlalchemy as sa

#: How often one piece of DDL is tried before its error is raised (a lost race needs only one).
ATTEMPTS = 5
_PAUSE_SECONDS = 0.05


def create_tables_safely(engine: sa.Engine, tables: Sequence[sa.Table]) -> None:
    """Make each of `tables` exist with its indexes and columns, whoever else is doing the same.

    Missing tables and indexes are created. A column an existing table lacks (a table from an
    older release) is added with ALTER TABLE when it can be: not part of the primary key, and
    nullable or with a server default. Other missing columns are left to the caller's own
    migration. An error from a statement that another process's identical statement made
    redundant is ignored once a fresh look at the database shows the object there.
    """
    for table in tables:
        if not _has_table(engine, table):
            ensure_created(
                partial(_has_table, engine, table), partial(_create_table, engine, table)
            )
        inspector = sa.inspect(engine)
        indexes = {found["name"] for found in inspector.get_indexes(table.name, table.schema)}
        columns = {found["name"] for found in inspector.get_columns(table.name, table.schema)}
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if index.name not in indexes:
                ensure_created(partial(_has_index, engine, index), partial(index.create, engine))
        for column in table.columns:
            if column.name not in columns and _addable(column):
                ensure_created(
                    partial(_has_column, engine, column), partial(_add_column, engine, column)
                )


def ensure_created(exists: Callable[[], bool], create: Callable[[], None]) -> None:
    """Run `create`; after an error, done if `exists` now holds, else try again (then raise)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            create()
            return
        except sa.exc.DBAPIError:
            # Lost a race (already exists), or the database was busy: look again, then retry.
            if exists():
                return
            if attempt == ATTEMPTS:
                raise
            time.sleep(_PAUSE_SECONDS * attempt)


def _create_table(engine: sa.Engine, table: sa.Table) -> None:
    # Indexes come after, one by one: on SQLite the table may exist before another
    # process has created them.
    with engine.begin() as connection:
        connection.execute(sa.schema.CreateTable(table))


def _addable(column: sa.Column) -> bool:
    """Whether ALTER TABLE ADD COLUMN can add it to a table with rows, on every database."""
    return not column.primary_key and (column.nullable or column.server_default is not None)


def _add_column(engine: sa.Engine, column: sa.Column) -> None:
    with engine.begin() as connection:
        dialect = connection.dialect
        table = dialect.identifier_preparer.format_table(column.table)
        definition = sa.schema.CreateColumn(column).compile(dialect=dialect)
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {definition}")


def _has_table(engine: sa.Engine, table: sa.Table) -> bool:
    return sa.inspect(engine).has_table(table.name, schema=table.schema)


def _has_index(engine: sa.Engine, index: sa.Index) -> bool:
    table = index.table
    assert table is not None
    existing = sa.inspect(engine).get_indexes(table.name, schema=table.schema)
    return any(found["name"] == index.name for found in existing)


def _has_column(engine: sa.Engine, column: sa.Column) -> bool:
    table = column.table
    existing = sa.inspect(engine).get_columns(table.name, schema=table.schema)
    return any(found["name"] == column.name for found in existing)
