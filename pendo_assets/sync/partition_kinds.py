"""What a partition column holds, and how its values map to UTC days.

A sync does not say whether its partition column holds timestamps, ISO-8601 text or epoch
numbers; one sample value tells (see ``kind_of``). Each kind knows how to cut a UTC day out of
the column with a sargable SQL condition (nothing is applied to the column, so an index on it is
used), how to turn fetched values into UTC instants, and how to write and read a sensor cursor.

Text cannot be cut exactly in SQL (offsets move a value to another UTC day, separators and
precision vary), so its SQL conditions only narrow the rows and ``approximate_in_sql`` tells the
caller to make the exact cut on the parsed values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

UTC = UTC
#: Epoch numbers below this are seconds (it is 1973 in milliseconds, year 5138 in seconds).
EPOCH_SECONDS_BELOW = 10**11
#: No UTC offset in use is wider than this (UTC+14 in Kiribati; the lowest is UTC-12).
WIDEST_UTC_OFFSET = timedelta(hours=14)

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class CursorError(ValueError):
    """A sensor cursor that does not fit the partition column's kind."""


def partition_window(partition_key: str) -> tuple[datetime, datetime]:
    """The UTC day a partition key names, as aware datetimes ``[start, end)``."""
    if not isinstance(partition_key, str) or not _DAY.fullmatch(partition_key):
        raise ValueError(f"partition key must be a day like 2026-11-03, got {partition_key!r}")
    try:
        day = date.fromisoformat(partition_key)
    except ValueError as exc:
        raise ValueError(f"partition key {partition_key!r} is not a calendar day") from exc
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


class PartitionKind:
    """How one kind of partition column is cut into UTC days and followed by a cursor."""

    #: For messages: what the column was found to hold.
    label = ""
    #: True when the SQL conditions only narrow the rows: the caller cuts exactly on ``instants``.
    approximate_in_sql = False

    def day_filter(self, column: Any, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
        """A sargable condition keeping the rows of the UTC day ``[start, end)``."""
        raise NotImplementedError

    def since_filter(self, column: Any, moment: datetime) -> sa.ColumnElement[bool]:
        """A sargable condition keeping the rows at or after ``moment`` (and, if approximate,
        more): the lower bound of the change sensor's window."""
        raise NotImplementedError

    def instants(self, values: Sequence[Any]) -> pd.Series:
        """The values as UTC instants (datetime64, UTC); NaT where a value has none.

        A Series keeps its index, so the result lines up with the frame it came from.
        """
        raise NotImplementedError

    def cursor_of(self, values: Sequence[Any], instants: pd.Series) -> str:
        """The greatest of ``values`` (non-empty), written so ``cursor_instant`` reads it back."""
        raise NotImplementedError

    def cursor_instant(self, cursor: str) -> pd.Timestamp:
        """The cursor as a UTC instant; CursorError if it is not one of this kind's cursors."""
        return _parse_instant(cursor)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.label}>"


class _Timestamps(PartitionKind):
    def __init__(self, aware: bool) -> None:
        self.aware = aware
        self.label = "timestamps with a time zone" if aware else "timestamps without a time zone"

    def _bound(self, moment: datetime) -> Any:
        if not self.aware:  # naive values are UTC: compare with naive UTC
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        # Typed explicitly: some dialects cast the parameter to the type's SQL type.
        return sa.bindparam(None, moment, type_=sa.DateTime(timezone=self.aware))

    def day_filter(self, column: Any, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
        return sa.and_(column >= self._bound(start), column < self._bound(end))

    def since_filter(self, column: Any, moment: datetime) -> sa.ColumnElement[bool]:
        return column >= self._bound(moment)

    def instants(self, values: Sequence[Any]) -> pd.Series:
        return pd.to_datetime(_objects(values), utc=True)

    def cursor_of(self, values: Sequence[Any], instants: pd.Series) -> str:
        latest = max(v for v in values if v is not None)
        return latest.astimezone(UTC).isoformat() if self.aware else latest.isoformat()


class _Dates(PartitionKind):
    label = "dates"

    def day_filter(self, column: Any, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
        return sa.and_(column >= _date_bound(start.date()), column < _date_bound(end.date()))

    def since_filter(self, column: Any, moment: datetime) -> sa.ColumnElement[bool]:
        # A date stands for its midnight (UTC): the first one at or after the moment.
        day = moment.astimezone(UTC).date()
        if moment > datetime(day.year, day.month, day.day, tzinfo=UTC):
            day += timedelta(days=1)
        return column >= _date_bound(day)

    def instants(self, values: Sequence[Any]) -> pd.Series:
        return pd.to_datetime(_objects(values), utc=True)

    def cursor_of(self, values: Sequence[Any], instants: pd.Series) -> str:
        return max(v for v in values if v is not None).isoformat()


class _EpochNumbers(PartitionKind):
    label = "epoch numbers (milliseconds, or seconds below 1e11)"

    def day_filter(self, column: Any, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
        # Each value is read in its own unit, so a day is two disjoint ranges: one in
        # milliseconds (at or above EPOCH_SECONDS_BELOW), one in seconds (below it).
        ms_low, ms_high = (int(t.timestamp()) * 1000 for t in (start, end))
        s_low, s_high = (int(t.timestamp()) for t in (start, end))
        ranges = []
        if ms_high > EPOCH_SECONDS_BELOW:
            ranges.append((max(ms_low, EPOCH_SECONDS_BELOW), ms_high))
        if s_low < EPOCH_SECONDS_BELOW:
            ranges.append((s_low, min(s_high, EPOCH_SECONDS_BELOW)))
        conditions = [
            sa.and_(column >= _number_bound(low), column < _number_bound(high))
            for low, high in ranges
        ]
        return conditions[0] if len(conditions) == 1 else sa.or_(*conditions)

    def since_filter(self, column: Any, moment: datetime) -> sa.ColumnElement[bool]:
        # As in day_filter: milliseconds at or above EPOCH_SECONDS_BELOW, seconds below it.
        millis, seconds = _epoch_bounds(moment)
        in_millis = column >= _number_bound(max(millis, EPOCH_SECONDS_BELOW))
        if seconds >= EPOCH_SECONDS_BELOW:
            return in_millis
        return sa.or_(
            in_millis,
            sa.and_(column >= _number_bound(seconds), column < _number_bound(EPOCH_SECONDS_BELOW)),
        )

    def cursor_instant(self, cursor: str) -> pd.Timestamp:
        try:
            number = Decimal(cursor.strip()) if isinstance(cursor, str) else Decimal("NaN")
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            raise CursorError(f"cursor {cursor!r} is not an epoch number")
        instant = self.instants([number]).iloc[0]
        if pd.isna(instant):
            raise CursorError(f"cursor {cursor!r} is not an epoch number of a usable time")
        return instant

    def instants(self, values: Sequence[Any]) -> pd.Series:
        objects = _objects(values)
        numbers = np.array([np.nan if v is None else float(v) for v in objects], dtype=float)
        millis = np.where(numbers < EPOCH_SECONDS_BELOW, numbers * 1000, numbers)
        return pd.Series(
            pd.to_datetime(millis, unit="ms", utc=True, errors="coerce"), index=objects.index
        )

    def cursor_of(self, values: Sequence[Any], instants: pd.Series) -> str:
        latest = max(v for v in values if v is not None)
        if isinstance(latest, int):
            return str(latest)
        if isinstance(latest, Decimal):
            return str(int(latest)) if latest == latest.to_integral_value() else str(latest)
        latest = float(latest)
        return str(int(latest)) if latest.is_integer() else repr(latest)


class _IsoText(PartitionKind):
    label = "ISO-8601 text"
    approximate_in_sql = True

    def day_filter(self, column: Any, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
        # ISO text sorts like the instant it names, give or take its UTC offset (under a day):
        # a window one day wider on each side, as plain dates, holds every candidate.
        low = (start.date() - timedelta(days=1)).isoformat()
        high = (end.date() + timedelta(days=1)).isoformat()
        return sa.and_(column >= _text_bound(low), column < _text_bound(high))

    def since_filter(self, column: Any, moment: datetime) -> sa.ColumnElement[bool]:
        # A later instant written with any offset starts no earlier than this date.
        earliest = (moment.astimezone(UTC) - WIDEST_UTC_OFFSET).date().isoformat()
        return column >= _text_bound(earliest)

    def instants(self, values: Sequence[Any]) -> pd.Series:
        return parse_iso_text(values)

    def cursor_of(self, values: Sequence[Any], instants: pd.Series) -> str:
        return instants.max().isoformat()


AWARE_TIMESTAMPS: PartitionKind = _Timestamps(aware=True)
NAIVE_TIMESTAMPS: PartitionKind = _Timestamps(aware=False)
DATES: PartitionKind = _Dates()
EPOCH_NUMBERS: PartitionKind = _EpochNumbers()
ISO_TEXT: PartitionKind = _IsoText()


def kind_of(sample: Any) -> PartitionKind | None:
    """The kind of partition column a (non-null) value comes from; None if not a usable one."""
    if isinstance(sample, datetime):
        return AWARE_TIMESTAMPS if sample.utcoffset() is not None else NAIVE_TIMESTAMPS
    if isinstance(sample, date):
        return DATES
    if isinstance(sample, bool):
        return None
    if isinstance(sample, int | float | Decimal):
        return EPOCH_NUMBERS
    if isinstance(sample, str):
        return ISO_TEXT
    return None


def parse_iso_text(values: Sequence[Any]) -> pd.Series:
    """ISO-8601 text as UTC instants: ``T`` or space, ``Z``, an offset, or none (UTC).

    Anything that is not such text (other strings, non-strings, None) becomes NaT.
    """
    objects = _objects(values)
    text = objects.where(objects.map(lambda v: isinstance(v, str)), None)
    return pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")


def _objects(values: Sequence[Any]) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.astype(object)
    return pd.Series(list(values), dtype=object)


def _parse_instant(cursor: str) -> pd.Timestamp:
    parsed = parse_iso_text([cursor]).iloc[0] if isinstance(cursor, str) else pd.NaT
    if pd.isna(parsed):
        raise CursorError(f"cursor {cursor!r} is not an ISO-8601 timestamp")
    return parsed


def _epoch_bounds(moment: datetime) -> tuple[int, int]:
    """``moment`` in whole epoch milliseconds and whole seconds, rounded down (so a bound
    keeps every value at or after it)."""
    micros = (moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )
    return micros // 1000, micros // 1_000_000


def _date_bound(day: date) -> Any:
    return sa.bindparam(None, day, type_=sa.Date())


def _number_bound(number: int | Decimal) -> Any:
    if isinstance(number, int):
        return sa.bindparam(None, number, type_=sa.BigInteger())
    return sa.bindparam(None, number, type_=sa.Numeric())


def _text_bound(text: str) -> Any:
    return sa.bindparam(None, text, type_=sa.String())
