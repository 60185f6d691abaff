"""What a partition column holds, and how its values map to UTC days.

A sync does not say whether its partition column holds timestamps, ISO-8601 text or epoch
numbers; one sample value tells (see ``kind_of``). Naive timestamps and offset-less text are
wall-clock times in the source's ``timezone`` (UTC unless the syncs file says otherwise), so a
UTC day is cut on them as that zone's wall-clock range. Epoch numbers are read in the unit their
magnitude gives (``epoch_units``): seconds, milliseconds, microseconds or nanoseconds.

Each kind knows how to cut a UTC day out of the column with a sargable SQL condition (nothing
is applied to the column, so an index on it is used), how to turn fetched values into UTC
instants, and how to write and read a sensor cursor.

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
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pendo_assets.sync.prepare.epoch_units import BANDS, to_epoch_ms
from pendo_assets.sync.spec import DECLARABLE_KINDS

UTC = UTC
#: Epoch numbers at or above this magnitude are no instant in any unit (year 5138 in ns).
EPOCH_LIMIT = 10**20
#: Per unit: the band's lower and upper magnitude and how many of the unit make a millisecond
#: (seconds admit negative values: instants before 1970).
_UNITS: tuple[tuple[int, int, Decimal], ...] = (
    (-(10**11), 10**11, Decimal(1) / 1000),
    (10**11, 10**14, Decimal(1)),
    (10**14, 10**17, Decimal(1000)),
    (10**17, 10**20, Decimal(1_000_000)),
)
assert [upper for _, upper, _ in _UNITS] == [int(upper) for upper, _ in BANDS]
#: No bound is bound beyond a BIGINT (nanoseconds reach it in 2262).
_BIGINT_MAX = 2**63 - 1
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
    #: True when ORDER BY the column is the order of the instants (no sort needed after).
    ordered_in_sql = False

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
    def __init__(self, aware: bool, timezone: str = "UTC") -> None:
        self.aware = aware
        self.zone = ZoneInfo(timezone)
        # Naive wall-clock time in a zone with DST repeats an hour each autumn.
        self.ordered_in_sql = aware or timezone == "UTC"
        self.label = (
            "timestamps with a time zone"
            if aware
            else f"timestamps without a time zone (wall-clock {timezone})"
        )

    def _bound(self, moment: datetime) -> Any:
        if not self.aware:  # naive values are wall-clock times of the source's zone
            moment = moment.astimezone(self.zone).replace(tzinfo=None)
        # Typed explicitly: some dialects cast the parameter to the type's SQL type.
        return sa.bindparam(None, moment, type_=sa.DateTime(timezone=self.aware))

    def day_filter(self, column: Any, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
        return sa.and_(column >= self._bound(start), column < self._bound(end))

    def since_filter(self, column: Any, moment: datetime) -> sa.ColumnElement[bool]:
        return column >= self._bound(moment)

    def instants(self, values: Sequence[Any]) -> pd.Series:
        objects = _objects(values)
        if self.aware:
            return pd.to_datetime(objects, utc=True)
        return _localized(pd.to_datetime(objects), self.zone)

    def cursor_of(self, values: Sequence[Any], instants: pd.Series) -> str:
        latest = max(v for v in values if v is not None)
        if self.aware:
            return latest.astimezone(UTC).isoformat()
        if self.zone.key == "UTC":
            return latest.isoformat()  # read back as UTC
        return instants.max().isoformat()


class _Dates(PartitionKind):
    label = "dates"
    ordered_in_sql = True

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
    label = "epoch numbers (seconds, milliseconds, microseconds or nanoseconds, by magnitude)"

    def day_filter(self, column: Any, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
        # Each value is read in the unit of its magnitude band, so a day is one range per
        # unit, each clipped to its band: the ranges never overlap, so a column mixing units
        # reads right and no sample of the unit is needed.
        low_ms, high_ms = _epoch_ms(start), _epoch_ms(end)
        conditions = []
        for band_low, band_high, per_ms in _UNITS:
            low = max(_ceil(low_ms * per_ms), band_low)
            high = min(_ceil(high_ms * per_ms), band_high, _BIGINT_MAX)
            if low < high:
                conditions.append(
                    sa.and_(column >= _number_bound(low), column < _number_bound(high))
                )
        return sa.or_(*conditions) if conditions else sa.false()

    def since_filter(self, column: Any, moment: datetime) -> sa.ColumnElement[bool]:
        moment_ms = _epoch_ms(moment)
        conditions = []
        for band_low, band_high, per_ms in _UNITS:
            low = max(_floor(moment_ms * per_ms), band_low)
            high = min(band_high, _BIGINT_MAX)
            if low < high:
                conditions.append(
                    sa.and_(column >= _number_bound(low), column < _number_bound(high))
                )
        return sa.or_(*conditions) if conditions else sa.false()

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
        numbers = np.array([_float(v) for v in objects], dtype=float)
        with np.errstate(invalid="ignore", over="ignore"):
            millis = to_epoch_ms(numbers)
        return pd.Series(
            pd.to_datetime(millis, unit="ms", utc=True, errors="coerce"), index=objects.index
        )

    def cursor_of(self, values: Sequence[Any], instants: pd.Series) -> str:
        # The value of the latest instant, not the greatest number: units may be mixed.
        latest = list(values)[int(np.argmax(instants.to_numpy()))]
        if isinstance(latest, int):
            return str(latest)
        if isinstance(latest, Decimal):
            return str(int(latest)) if latest == latest.to_integral_value() else str(latest)
        latest = float(latest)
        return str(int(latest)) if latest.is_integer() else repr(latest)


class _IsoText(PartitionKind):
    approximate_in_sql = True

    def __init__(self, timezone: str = "UTC") -> None:
        self.zone = ZoneInfo(timezone)
        self.label = "ISO-8601 text" + ("" if timezone == "UTC" else f" (offset-less: {timezone})")

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
        return parse_iso_text(values, self.zone)

    def cursor_of(self, values: Sequence[Any], instants: pd.Series) -> str:
        return instants.max().isoformat()


AWARE_TIMESTAMPS: PartitionKind = _Timestamps(aware=True)
NAIVE_TIMESTAMPS: PartitionKind = _Timestamps(aware=False)
DATES: PartitionKind = _Dates()
EPOCH_NUMBERS: PartitionKind = _EpochNumbers()
ISO_TEXT: PartitionKind = _IsoText()


def declared_kind(name: str, timezone: str = "UTC") -> PartitionKind:
    """The kind a syncs file declares: no probe of the warehouse is needed to know it."""
    if name == "timestamptz":
        return AWARE_TIMESTAMPS
    if name == "timestamp":
        return NAIVE_TIMESTAMPS if timezone == "UTC" else _Timestamps(False, timezone)
    if name == "date":
        return DATES
    if name == "epoch":
        return EPOCH_NUMBERS
    if name == "iso_text":
        return ISO_TEXT if timezone == "UTC" else _IsoText(timezone)
    raise ValueError(f"unknown partition kind {name!r}; expected one of {DECLARABLE_KINDS}")


def kind_of(sample: Any, timezone: str = "UTC") -> PartitionKind | None:
    """The kind of partition column a (non-null) value comes from; None if not a usable one.

    ``timezone`` is the zone of naive timestamps and offset-less text (the source's).
    """
    if isinstance(sample, datetime):
        if sample.utcoffset() is not None:
            return AWARE_TIMESTAMPS
        return NAIVE_TIMESTAMPS if timezone == "UTC" else _Timestamps(False, timezone)
    if isinstance(sample, date):
        return DATES
    if isinstance(sample, bool):
        return None
    if isinstance(sample, int | float | Decimal):
        return EPOCH_NUMBERS if abs(_float(sample)) < EPOCH_LIMIT else None
    if isinstance(sample, str):
        return ISO_TEXT if timezone == "UTC" else _IsoText(timezone)
    return None


_OFFSET = re.compile(r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)\s*$")


def parse_iso_text(values: Sequence[Any], zone: ZoneInfo | None = None) -> pd.Series:
    """ISO-8601 text as UTC instants: ``T`` or space, ``Z``, an offset, or none (wall-clock
    time in ``zone``, UTC by default).

    Anything that is not such text (other strings, non-strings, None) becomes NaT.
    """
    objects = _objects(values)
    text = objects.where(objects.map(lambda v: isinstance(v, str)), None)
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    if zone is None or zone.key == "UTC":
        return parsed
    naive = text.map(lambda v: isinstance(v, str) and _OFFSET.search(v) is None).astype(bool)
    naive &= parsed.notna()
    if naive.any():
        walls = parsed[naive].dt.tz_localize(None)
        parsed = parsed.copy()
        parsed[naive] = _localized(walls, zone)
    return parsed


def _localized(walls: pd.Series, zone: ZoneInfo) -> pd.Series:
    """Naive wall-clock times of ``zone`` as UTC instants (the first of an ambiguous pair,
    a time skipped by a clock change moved forward)."""
    if zone.key == "UTC":
        return walls.dt.tz_localize(UTC)
    first = np.ones(len(walls), dtype=bool)
    local = walls.dt.tz_localize(zone, ambiguous=first, nonexistent="shift_forward")
    return local.dt.tz_convert(UTC)


def _objects(values: Sequence[Any]) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.astype(object)
    return pd.Series(list(values), dtype=object)


def _parse_instant(cursor: str) -> pd.Timestamp:
    parsed = parse_iso_text([cursor]).iloc[0] if isinstance(cursor, str) else pd.NaT
    if pd.isna(parsed):
        raise CursorError(f"cursor {cursor!r} is not an ISO-8601 timestamp")
    return parsed


def _epoch_ms(moment: datetime) -> int:
    """``moment`` in whole epoch milliseconds (day bounds are whole milliseconds)."""
    micros = (moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )
    return micros // 1000


def _ceil(number: Decimal) -> int:
    return int(number.to_integral_value(rounding="ROUND_CEILING"))


def _floor(number: Decimal) -> int:
    return int(number.to_integral_value(rounding="ROUND_FLOOR"))


def _float(value: Any) -> float:
    if value is None:
        return float("nan")
    try:
        return float(value)
    except (OverflowError, ValueError, TypeError):
        return float("inf")


def _date_bound(day: date) -> Any:
    return sa.bindparam(None, day, type_=sa.Date())


def _number_bound(number: int | Decimal) -> Any:
    if isinstance(number, int):
        return sa.bindparam(None, number, type_=sa.BigInteger())
    return sa.bindparam(None, number, type_=sa.Numeric())


def _text_bound(text: str) -> Any:
    return sa.bindparam(None, text, type_=sa.String())
