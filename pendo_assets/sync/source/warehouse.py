"""Reading a sync's rows out of the warehouse, one UTC day at a time, and never writing to it.

A source is a table (``schema.table`` allowed) or a SELECT. Every statement is built with
SQLAlchemy constructs, so table and column names are quoted by the dialect (spaces, upper case,
reserved words) and no config value is ever formatted into SQL; a query source is wrapped as a
subquery from which only the needed columns are selected.

What the partition column holds is learnt from one sample value of that column alone (see
``partition_kinds``): timestamps (aware, or naive in the source's ``timezone``), dates, ISO-8601
text or epoch numbers of any unit. The day is cut with a sargable condition on the bare column;
for text the SQL only narrows and pandas cuts exactly. Rows come back in the order of the instant
they name (not of the raw value: epoch units may be mixed). Reading a partition is that probe and
one query; the catalogue is read only on SQLite (to find BOOLEAN columns), and a failed
reflection falls back to the raw values.

Connections are read-only on PostgreSQL and every transaction is rolled back. Failures become a
``WarehouseError`` naming the source and the column, with the URL's password hidden.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pendo_assets.database_urls import error_reason, masked
from pendo_assets.sync.source.boolean_spellings import SpelledBoolean
from pendo_assets.sync.source.column_chunks import FETCH_ROWS, column_chunks, column_frame
from pendo_assets.sync.source.fetched_rows import fetch_batches
from pendo_assets.sync.source.fingerprint_alongside import FingerprintAlongside
from pendo_assets.sync.source.partition_fingerprint import (
    PartitionFingerprint,
    partition_fingerprint,
)
from pendo_assets.sync.source.partition_kinds import (
    EPOCH_LIMIT,
    CursorError,
    PartitionKind,
    declared_kind,
    kind_of,
    parse_iso_text,
    partition_window,
)
from pendo_assets.sync.spec import DEFAULT_SENSOR_LOOKBACK_DAYS, SourceSpec

__all__ = [
    "FingerprintCheck",
    "PartitionRead",
    "PartitionStream",
    "RecentPartitions",
    "WarehouseError",
    "changed_partitions",
    "partition_window",
    "read_partition",
    "read_partition_counted",
    "stream_partition",
    "window_start",
]

#: Rows per chunk when a partition is streamed: bounds a sync's memory, not the partition.
DEFAULT_CHUNK_ROWS = 50_000
#: The alias a query source gets as a subquery.
QUERY_ALIAS = "pendo_source"
#: How many more values to look at before calling a text partition column "not timestamps".
_TEXT_SAMPLE = 100
# SQLAlchemy's own pattern for ``:name`` bind parameters in text(); escaped so query text
# such as ``'a :b'`` reaches the database verbatim (the compiler unescapes ``\:``).
_BIND_PARAM = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])", re.UNICODE)
#: ISO-8601 text starts with a date: text not shaped so names no instant (LIKE is portable).
_ISO_SHAPE = "____-__-__%"

log = logging.getLogger(__name__)


class WarehouseError(Exception):
    """The warehouse cannot give a sync its rows; the message names the source, column and why."""


# -- the API -----------------------------------------------------------------------------------


def read_partition(
    engine: sa.Engine, source: SourceSpec, columns: Sequence[str], partition_key: str
) -> pd.DataFrame:
    """The rows whose partition column falls in the UTC day ``partition_key``.

    Only ``columns``, in that order, ordered by the instant the partition column names (ties
    keep the order the warehouse gave), with a fresh RangeIndex. Values are exactly what the
    driver returned (object columns: no NaN for NULL, no float for a nullable int, text
    timestamps stay text).
    """
    return read_partition_counted(engine, source, columns, partition_key, count=False).frame


@dataclass(frozen=True)
class PartitionRead:
    """A partition's rows, and how many rows of the whole source fall in no partition at all.

    ``rows_without_partition`` counts NULL partition values; for text columns also text not
    shaped like an ISO-8601 date (``____-__-__…``); for epoch numbers also magnitudes of 1e20
    or more. None when not counted.
    """

    frame: pd.DataFrame
    rows_without_partition: int | None


def read_partition_counted(
    engine: sa.Engine,
    source: SourceSpec,
    columns: Sequence[str],
    partition_key: str,
    *,
    count: bool = True,
) -> PartitionRead:
    """``read_partition``, plus (with ``count``) one COUNT of the source's rows that no
    partition will ever read, so they never vanish unseen."""
    wanted = list(columns)
    counted: list[int] = []
    read = list(
        _chunks(
            engine,
            source,
            wanted,
            partition_key,
            DEFAULT_CHUNK_ROWS,
            None,
            on_count=counted.append if count else None,
        )
    )
    parts = [part for part, _ in read]
    kind = read[0][1] if read else None
    frame = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=_needed(source, wanted))
    )
    if kind is not None and len(parts) > 1 and not _exact_in_sql(kind):
        instants = kind.instants(frame[source.partition_column])  # each chunk is in order
        frame = frame.loc[instants.sort_values(kind="stable").index]
    without = counted[0] if counted else None
    return PartitionRead(frame[wanted].reset_index(drop=True), without)


def stream_partition(
    engine: sa.Engine,
    source: SourceSpec,
    columns: Sequence[str],
    partition_key: str,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    group_by: str | None = None,
    on_count: Callable[[int], None] | None = None,
) -> PartitionStream:
    """The rows of ``read_partition`` in chunks of about ``chunk_rows``: memory bounded by a chunk.

    The rows come through a server-side cursor where the driver has one (PostgreSQL); each
    chunk is in instant order. With ``group_by`` (a column, e.g. the id) the rows are ordered by
    it first, and all rows whose ``group_by`` values are equal (text compared without
    surrounding whitespace) are in the same chunk, in instant order: the last of them is the
    latest, whatever the chunk size. Without it, chunks follow one another in the order of
    the partition column. ``on_count``, when given, hears once the last chunk is read how many
    rows of the whole source no partition reads (``PartitionRead.rows_without_partition``),
    counted on the same connection, with the kind the read already probed.

    Nothing is read until the stream is iterated; ``PartitionStream.check_fingerprint`` may
    first ask for the partition's fingerprint, and the rows are then read only if wanted.
    """
    wanted = list(columns)

    def read(check: FingerprintCheck | None) -> Iterator[pd.DataFrame]:
        chunks = _chunks(
            engine, source, wanted, partition_key, chunk_rows, group_by, on_count, check
        )
        for part, _kind in chunks:
            yield part[wanted].reset_index(drop=True)

    return PartitionStream(read)


@dataclass(frozen=True)
class FingerprintCheck:
    """Asks for a partition's fingerprint. ``seed`` names what else decides what a sync sends;
    ``wants_rows`` hears the fingerprint and says whether to read the rows. With ``first``
    false, the fingerprint is taken after the rows were read (same snapshot), its answer
    ignored: for a run that must read anyway, the database's work then overlaps the sync's."""

    seed: str
    wants_rows: Callable[[PartitionFingerprint], bool]
    first: bool = True


class PartitionStream:
    """A partition's chunks, read when iterated (once).

    With a fingerprint check, a PostgreSQL warehouse whose day filter is exact in SQL first
    works out the partition's fingerprint, in the same REPEATABLE READ transaction (one
    snapshot) as the read that follows, if one follows: the rows read are exactly the rows
    fingerprinted. Elsewhere the check is never called and the rows are read as always.
    """

    def __init__(self, read: Callable[[FingerprintCheck | None], Iterator[pd.DataFrame]]) -> None:
        self._read = read
        self._check: FingerprintCheck | None = None

    def check_fingerprint(self, check: FingerprintCheck) -> None:
        self._check = check

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return self._read(self._check)


def _needed(source: SourceSpec, wanted: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*wanted, source.partition_column]))


def _exact_in_sql(kind: PartitionKind) -> bool:
    """The query's ORDER BY is the instant order and its WHERE the exact day."""
    return kind.ordered_in_sql and not kind.approximate_in_sql


def _chunks(
    engine: sa.Engine,
    source: SourceSpec,
    wanted: list[str],
    partition_key: str,
    chunk_rows: int,
    group_by: str | None,
    on_count: Callable[[int], None] | None = None,
    check: FingerprintCheck | None = None,
) -> Iterator[tuple[pd.DataFrame, PartitionKind]]:
    """(chunk with the ``wanted`` columns, and the partition column where it is needed to put
    the rows in instant order; the partition column's kind), streamed; then the count of
    unplaced rows to ``on_count``. With a ``check`` that wants no rows, none are read."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    start, end = partition_window(partition_key)
    needed = _needed(source, wanted)
    table = _selectable(source, needed)
    column = table.c[source.partition_column]
    with _reading(engine, source, needed, one_snapshot=check is not None) as conn:
        kind = _partition_kind(conn, source, table)
        if kind is None:
            # No value to read yet: still fail now on a column that does not exist.
            conn.execute(sa.select(*(table.c[name] for name in needed)).where(sa.false()))
            if on_count is not None:
                on_count(_count_unplaced(conn, table, column, None))
            return
        # The partition column is fetched only to order or cut the rows in pandas (or when
        # wanted): a timestamp costs the driver more to load than the rest of a row.
        selected = list(dict.fromkeys(wanted)) if _exact_in_sql(kind) else needed
        # Only where SQL cuts the day exactly can SQL fingerprint the rows a sync reads.
        fingerprint = check if check is not None and _exact_in_sql(kind) else None

        # Over the partition column too, read or not: it orders the rows of one id.
        fingerprinted = [table.c[name] for name in needed]
        day = kind.day_filter(column, start, end)
        alongside = None
        if fingerprint is not None and fingerprint.first:
            found = partition_fingerprint(conn, fingerprinted, day, fingerprint.seed)
            if found is not None and not fingerprint.wants_rows(found):
                if on_count is not None:
                    on_count(_count_unplaced(conn, table, column, kind))
                return
        elif fingerprint is not None:
            alongside = FingerprintAlongside.start(
                engine, conn, fingerprinted, day, fingerprint.seed
            )
        booleans = _boolean_columns(conn, source, selected)
        # Rows without an id come last; their order among ids does not matter.
        ordering = [column] if group_by is None else [table.c[group_by].nulls_last(), column]
        statement = (
            sa.select(
                *(
                    sa.type_coerce(table.c[name], SpelledBoolean()).label(name)
                    if name in booleans
                    else table.c[name]
                    for name in selected
                )
            )
            .where(day)
            .order_by(*ordering)
        )
        group = None if group_by is None else selected.index(group_by)
        fetches = fetch_batches(conn, statement, min(FETCH_ROWS, chunk_rows))
        try:
            for columns in column_chunks(fetches, len(selected), chunk_rows, group):
                part = _in_instant_order(column_frame(columns, selected), source, kind, start, end)
                if len(part):
                    yield part, kind
        except BaseException:  # the read failed or was abandoned: so is the fingerprint
            if alongside is not None:
                alongside.cancel()
            raise
        if fingerprint is not None and not fingerprint.first:
            # The same snapshot either way: exactly the rows just read.
            if alongside is not None:
                found = alongside.result()
            else:
                found = partition_fingerprint(conn, fingerprinted, day, fingerprint.seed)
            if found is not None:
                fingerprint.wants_rows(found)
        if on_count is not None:
            on_count(_count_unplaced(conn, table, column, kind))


def _in_instant_order(
    frame: pd.DataFrame, source: SourceSpec, kind: PartitionKind, start: datetime, end: datetime
) -> pd.DataFrame:
    """The rows of the day in the order of the instant they name (ties keep their order)."""
    if not len(frame) or _exact_in_sql(kind):
        return frame  # the query's ORDER BY did it
    instants = kind.instants(frame[source.partition_column])
    if kind.approximate_in_sql:
        instants = instants[(instants >= start) & (instants < end)]
    return frame.loc[instants.sort_values(kind="stable").index].reset_index(drop=True)


def _count_unplaced(
    conn: sa.Connection, table: sa.FromClause, column: Any, kind: PartitionKind | None
) -> int:
    """Rows whose partition value is NULL or, by a cheap test, names no instant."""
    condition: sa.ColumnElement[bool] = column.is_(None)
    label = kind.label if kind is not None else ""
    if label.startswith("ISO-8601 text"):
        condition = sa.or_(condition, column.not_like(_ISO_SHAPE))
    elif label.startswith("epoch numbers"):
        limit = float(EPOCH_LIMIT)
        condition = sa.or_(
            condition,
            column >= sa.bindparam(None, limit, type_=sa.Float()),
            column <= sa.bindparam(None, -limit, type_=sa.Float()),
        )
    counting = sa.select(sa.func.count()).select_from(table).where(condition)
    return int(conn.execute(counting).scalar_one())


@dataclass(frozen=True)
class RecentPartitions:
    """What the change sensor's window of the warehouse holds.

    ``fingerprints`` maps each UTC day (sorted ``YYYY-MM-DD`` keys) with rows in the window to a
    fingerprint of those rows' partition values: row count, latest value and a digest of all
    of them, so a row that arrives late, or moves within the window, changes it. ``cursor`` is
    the greatest partition value seen so far (ISO-8601 for timestamps and text, digits for
    epoch numbers); ``since`` is the window's lower bound, a UTC midnight.
    """

    since: datetime
    fingerprints: dict[str, str]
    cursor: str | None


def window_start(anchor: datetime, lookback_days: float) -> datetime:
    """The UTC midnight at or before ``anchor - lookback_days``: whole days only, so a day's
    fingerprint does not change as the window moves on."""
    moment = anchor.astimezone(UTC) - timedelta(days=lookback_days)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def changed_partitions(
    engine: sa.Engine,
    source: SourceSpec,
    cursor: str | None,
    *,
    before: datetime | None = None,
    lookback_days: float = DEFAULT_SENSOR_LOOKBACK_DAYS,
) -> RecentPartitions:
    """The UTC days with rows in the change sensor's window, each with a fingerprint.

    The window starts ``lookback_days`` before ``cursor`` (the greatest partition value seen
    by an earlier call), or before ``before`` on a first call (no cursor), rounded down to a
    UTC midnight; it is read again on every call, so rows committed late or out of order, with
    partition values at or below the cursor, still change their day's fingerprint. It ends at
    ``before`` (an aware UTC time, e.g. the start of a partition that does not exist yet), or
    has no end without it. Only the partition column of the rows in the window is fetched,
    with a sargable condition on it: never the whole table.
    """
    needed = [source.partition_column]
    table = _selectable(source, needed)
    column = table.c[source.partition_column]
    with _reading(engine, source, needed) as conn:
        kind = _partition_kind(conn, source, table)
        if kind is None:
            since = window_start(before or datetime.now(UTC), lookback_days)
            return RecentPartitions(since, {}, cursor)
        latest = None if cursor is None else _cursor_instant(kind, source, cursor)
        anchor = (before or datetime.now(UTC)) if latest is None else latest.to_pydatetime()
        since = window_start(anchor, lookback_days)
        if before is None:
            condition = kind.since_filter(column, since)
        else:
            condition = kind.day_filter(column, since, before)  # any [midnight, end) range
        fetched = conn.execute(sa.select(column).where(condition)).scalars().all()
    values = pd.Series(fetched, dtype=object)
    instants = kind.instants(values)
    inside = instants.notna() & (instants >= pd.Timestamp(since))
    if before is not None:
        inside &= instants < pd.Timestamp(before)
    values, instants = values[inside], instants[inside]
    fingerprints = {
        day: _fingerprint(group)
        for day, group in instants.groupby(instants.dt.strftime("%Y-%m-%d"))
    }
    if not values.empty and (latest is None or instants.max() >= latest):
        cursor = kind.cursor_of(list(values), instants)
    return RecentPartitions(since, dict(sorted(fingerprints.items())), cursor)


def _cursor_instant(kind: PartitionKind, source: SourceSpec, cursor: str) -> pd.Timestamp:
    try:
        return kind.cursor_instant(cursor)
    except CursorError as exc:
        raise WarehouseError(
            f"{exc} (partition column {source.partition_column!r} of "
            f"{_describe(source)} holds {kind.label})"
        ) from exc


def _fingerprint(instants: pd.Series) -> str:
    """Count, latest value and a digest of every value: equal only for the same values."""
    utc_wall = instants.dt.as_unit("ns").dt.tz_localize(None)  # the same unit on every call
    nanos = np.sort(utc_wall.to_numpy().astype(np.int64))
    digest = hashlib.blake2b(nanos.tobytes(), digest_size=8).hexdigest()
    return f"{len(nanos)}:{instants.max().isoformat()}:{digest}"


# -- building statements -----------------------------------------------------------------------


def _selectable(source: SourceSpec, needed: Sequence[str]) -> sa.FromClause:
    """The source as something to select ``needed`` from; names are quoted by the dialect."""
    columns = [sa.column(name) for name in needed]
    if source.table:
        schema, name = source.schema_and_table
        return sa.table(name, *columns, schema=schema)
    return _query_text(source).columns(*columns).subquery(QUERY_ALIAS)


def _boolean_columns(conn: sa.Connection, source: SourceSpec, needed: Sequence[str]) -> set[str]:
    """Declared BOOLEAN columns of a SQLite table source; empty anywhere else.

    SQLite stores booleans as 0 and 1; reading them through SQLAlchemy's Boolean type gives
    True and False back, as other drivers do on their own. Only SQLite needs the catalogue
    for that (elsewhere it is a slow query, or one the dialect cannot run), and a failed
    reflection leaves the raw values.
    """
    if not source.table or conn.dialect.name != "sqlite":
        return set()
    schema, name = source.schema_and_table
    try:
        columns = sa.inspect(conn).get_columns(name, schema=schema)
    except sa.exc.SQLAlchemyError as exc:
        log.debug("cannot reflect %s for BOOLEAN columns: %s", _describe(source), exc)
        return set()
    return {
        column["name"]
        for column in columns
        if column["name"] in needed and isinstance(column["type"], sa.Boolean)
    }


def _query_text(source: SourceSpec) -> sa.TextClause:
    assert source.query is not None
    query = source.query.strip().rstrip(";").rstrip()
    query = _BIND_PARAM.sub(lambda match: "\\" + match.group(0), query)
    # The newline keeps the closing parenthesis out of a trailing ``-- comment``.
    return sa.text(query + "\n")


def _partition_kind(
    conn: sa.Connection, source: SourceSpec, table: sa.FromClause
) -> PartitionKind | None:
    """What the partition column holds, from one non-null value; None if it has none.

    The probe fetches the partition column alone, one row. A value that fits no kind (text
    that is no ISO-8601 timestamp, a number beyond every epoch unit) is a WarehouseError
    naming the source, the column and the value, never a silent zero rows.
    """
    if source.partition_kind is not None:  # declared: no probe at all
        return declared_kind(source.partition_kind, source.timezone)
    column = table.c[source.partition_column]
    probe = sa.select(column).where(column.is_not(None)).limit(1)
    row = conn.execute(probe).first()
    if row is None:
        return None
    sample = row[0]
    kind = kind_of(sample, source.timezone)
    where = f"partition column {source.partition_column!r} of {_describe(source)}"
    if kind is None:
        if isinstance(sample, int | float | Decimal) and not isinstance(sample, bool):
            raise WarehouseError(
                f"{where} holds numbers such as {_short(repr(sample))}, which are no epoch "
                "time in seconds, milliseconds, microseconds or nanoseconds (all below 1e20)"
            )
        raise WarehouseError(
            f"{where} holds {type(sample).__name__} values such as {_short(repr(sample))}; "
            "expected timestamps, dates, ISO-8601 text or epoch numbers"
        )
    if isinstance(sample, str) and parse_iso_text([sample]).isna().all():
        more = sa.select(column).where(column.is_not(None)).limit(_TEXT_SAMPLE)
        if parse_iso_text(conn.execute(more).scalars().all()).isna().all():
            raise WarehouseError(
                f"{where} holds text that is not an ISO-8601 timestamp, such as "
                f"{_short(repr(sample))}; expected e.g. '2026-11-03T10:00:00Z'"
            )
    return kind


# -- connections and errors --------------------------------------------------------------------


@contextmanager
def _reading(
    engine: sa.Engine, source: SourceSpec, needed: Sequence[str], *, one_snapshot: bool = False
) -> Iterator[sa.Connection]:
    """A connection that cannot write (PostgreSQL) and never commits; errors made readable.
    With ``one_snapshot``, every statement on it sees the same snapshot (REPEATABLE READ)."""
    try:
        conn = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise WarehouseError(
            f"cannot connect to the warehouse {masked(engine.url)} to read {_describe(source)}: "
            f"{error_reason(exc, engine.url)}"
        ) from exc
    with conn:  # closing rolls back: nothing is ever committed
        if conn.dialect.name == "postgresql":
            conn.execution_options(postgresql_readonly=True)
            if one_snapshot:
                conn.execution_options(isolation_level="REPEATABLE READ")
        try:
            yield conn
            return
        except sa.exc.DBAPIError as exc:
            failure = exc
    # Diagnosed on a fresh connection: the failed one may be in an aborted transaction.
    raise _diagnosis(engine, source, needed, failure) from failure


def _diagnosis(
    engine: sa.Engine, source: SourceSpec, needed: Sequence[str], failure: sa.exc.DBAPIError
) -> WarehouseError:
    """The clearest account of a failed read: a missing table or column if that is what it is."""
    problem = None
    try:
        with engine.connect() as conn:
            if source.table:
                problem = _table_problem(conn, engine, source, needed)
            else:
                problem = _query_problem(conn, source, needed)
    except sa.exc.SQLAlchemyError:
        problem = None
    if problem is None:
        problem = (
            f"cannot read {_describe(source)} (partition column {source.partition_column!r}) "
            f"from {masked(engine.url)}: {error_reason(failure, engine.url)}"
        )
    return WarehouseError(problem)


def _table_problem(
    conn: sa.Connection, engine: sa.Engine, source: SourceSpec, needed: Sequence[str]
) -> str | None:
    schema, name = source.schema_and_table
    inspector = sa.inspect(conn)
    if not inspector.has_table(name, schema=schema):
        there = sorted(inspector.get_table_names(schema) + inspector.get_view_names(schema))
        listing = f"; tables there: {_listing(there)}" if there else ""
        return f"{_describe(source)} not found in the warehouse {masked(engine.url)}{listing}"
    available = [column["name"] for column in inspector.get_columns(name, schema=schema)]
    return _missing_columns(source, needed, available)


def _query_problem(conn: sa.Connection, source: SourceSpec, needed: Sequence[str]) -> str | None:
    everything = (
        sa.select(sa.literal_column("*"))
        .select_from(_query_text(source).columns().subquery(QUERY_ALIAS))
        .limit(0)
    )
    available = list(conn.execute(everything).keys())
    return _missing_columns(source, needed, available)


def _missing_columns(source: SourceSpec, needed: Sequence[str], available: list[str]) -> str | None:
    missing = [name for name in needed if name not in available]
    if not missing:
        return None
    what = ", ".join(
        ("partition column " if name == source.partition_column else "column ") + repr(name)
        for name in missing
    )
    return f"{_describe(source)} has no {what}; its columns are: {_listing(available)}"


def _describe(source: SourceSpec) -> str:
    if source.table:
        return f"table {source.table!r}"
    return f"query {_short(' '.join((source.query or '').split()), 120)!r}"


def _listing(names: Sequence[str], limit: int = 30) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
