"""Timestamps of every warehouse form as integer epoch milliseconds, column by column.

Accepted: datetimes and dates (naive ones are UTC; pandas, numpy and Python objects, also
mixed inside object columns, converted in one vectorised pass), ISO-8601 and other dated text,
and epoch numbers of any unit told apart by magnitude (`epoch_units`). Refused, each on its own
row: text that is not an absolute instant ('now', 'today', '12:00', 'Tuesday': pandas would
read them with the run's own clock, so the same row would be a new event on every run),
booleans, non-finite or unit-less numbers, and instants outside the years 1 to 9999.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from pendo_assets.sync.prepare import epoch_units
from pendo_assets.sync.prepare.converted import Converted, is_missing, is_text_utf8

REASON = "is not a timestamp (datetime, ISO-8601 text, or epoch)"
MISSING = "is missing"
NOT_ABSOLUTE = "is not an absolute instant (a relative word, or no date with a year)"
NO_UNIT = "is a number of no epoch unit (seconds to nanoseconds), or not finite"
OUT_OF_RANGE = "is outside the years 1 to 9999"
NOT_UTF8 = "is text that is not valid UTF-8 (a lone surrogate)"
MIN_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z

_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_MS = pd.Timedelta(milliseconds=1)
_PY_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RELATIVE = re.compile(r"\b(now|today|yesterday|tomorrow|ago|next|last)\b", re.IGNORECASE)
_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")


class _Rows:
    """Float milliseconds per row (NaN until converted) and the reasons rows failed."""

    def __init__(self, rows: int) -> None:
        self.ms = np.full(rows, np.nan)
        self.reasons: dict[int, str] = {}

    def fail(self, position: int, reason: str) -> None:
        self.reasons[position] = reason


def to_epoch_ms(column: pd.Series) -> Converted:
    """Integer epoch milliseconds per row; missing and unconvertible rows are invalid."""
    rows = _Rows(len(column))
    if pd.api.types.is_datetime64_any_dtype(column):
        rows.ms[:] = _datetimes_ms(column)
    elif pd.api.types.is_bool_dtype(column):
        rows.reasons.update(dict.fromkeys(range(len(column)), _not_a_timestamp("boolean")))
    elif pd.api.types.is_numeric_dtype(column):
        rows.ms[:] = epoch_units.to_epoch_ms(column.to_numpy(dtype="float64", na_value=np.nan))
    else:
        _objects(column.to_numpy(dtype=object), rows)
    return _finish(rows, column)


def _finish(rows: _Rows, column: pd.Series) -> Converted:
    ms = rows.ms
    finite = np.isfinite(ms)
    in_range = finite & (ms >= MIN_MS) & (ms <= MAX_MS)
    invalid = ~in_range
    reasons = rows.reasons
    given = column.to_numpy(dtype=object)
    for position in np.flatnonzero(invalid):
        p = int(position)
        if p in reasons:
            continue
        if is_missing(given[p]):
            reasons[p] = MISSING
        elif finite[p]:
            reasons[p] = OUT_OF_RANGE
        elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            reasons[p] = NO_UNIT
    whole = np.where(in_range, np.round(np.where(in_range, ms, 0.0)), 0.0).astype(np.int64)
    values: list[Any] = whole.tolist()
    for position in np.flatnonzero(invalid):
        values[int(position)] = None
    reasons = {p: r for p, r in reasons.items() if r != REASON}
    return Converted(values, invalid, REASON, reasons)


def _datetimes_ms(parsed: pd.Series) -> np.ndarray:
    """Float epoch ms of a datetime column (naive is UTC); NaN for NaT."""
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize("UTC")
    delta = parsed - _EPOCH
    return (delta // _MS).to_numpy(dtype="float64", na_value=np.nan, copy=True)


def _objects(values: np.ndarray, rows: _Rows) -> None:
    """Sort an object column's values by kind in one cheap pass, then convert each kind at once."""
    instants: list[int] = []
    numbers: list[int] = []
    texts: list[int] = []
    number_values: list[float] = []
    for position, value in enumerate(values):
        if is_missing(value):
            continue
        if isinstance(value, datetime | date | np.datetime64):
            instants.append(position)
        elif isinstance(value, bool | np.bool_):
            rows.fail(position, _not_a_timestamp("boolean"))
        elif isinstance(value, np.timedelta64):  # numpy counts it as an integer
            rows.fail(position, _not_a_timestamp("duration"))
        elif isinstance(value, int | float | Decimal | np.number):
            numbers.append(position)
            number_values.append(_float(value))
        elif isinstance(value, str):
            texts.append(position)
        else:
            rows.fail(position, _not_a_timestamp(type(value).__name__))
    if instants:
        rows.ms[instants] = _instant_objects_ms(values[instants])
    if numbers:
        ms = epoch_units.to_epoch_ms(np.array(number_values, dtype="float64"))
        rows.ms[numbers] = ms
        for position, value in zip(numbers, ms, strict=True):
            if not np.isfinite(value):
                rows.fail(position, NO_UNIT)
    if texts:
        _texts(values, texts, rows)


def _not_a_timestamp(kind: str) -> str:
    return f"is a {kind}, not a timestamp"


def _float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond 1e308
        return float("inf")


def _instant_objects_ms(values: np.ndarray) -> np.ndarray:
    """Datetime and date objects (any zone, naive is UTC) to float ms in one pandas pass."""
    try:
        parsed = pd.Series(pd.to_datetime(values, utc=True, errors="coerce"))
        ms = _datetimes_ms(parsed)
    except (TypeError, ValueError, OverflowError):
        ms = np.full(len(values), np.nan)
    for index in np.flatnonzero(np.isnan(ms)):  # beyond pandas' range: exact Python arithmetic
        ms[index] = _python_ms(values[index])
    return ms


def _python_ms(value: Any) -> float:
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]").item()
        if not isinstance(value, datetime):
            return float("nan")
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    try:
        return float((value - _PY_EPOCH) // timedelta(milliseconds=1))
    except OverflowError:
        return float("nan")


def _texts(values: np.ndarray, positions: list[int], rows: _Rows) -> None:
    """Epoch-number text, then dated text; relative and year-less text fails, never guessed."""
    stripped = pd.Series([values[p].strip() for p in positions], index=positions, dtype=object)
    numbers = pd.to_numeric(stripped, errors="coerce")
    dated: list[int] = []
    for position, text in stripped.items():
        p = int(position)
        if not np.isnan(numbers[p]):
            continue
        if not text:
            rows.fail(p, MISSING)
        elif not is_text_utf8(text):
            rows.fail(p, NOT_UTF8)
        elif _RELATIVE.search(text) or not _YEAR.search(text):
            rows.fail(p, NOT_ABSOLUTE)
        else:
            dated.append(p)
    numeric = numbers.notna().to_numpy()
    if numeric.any():
        index = numbers.index[numeric]
        ms = epoch_units.to_epoch_ms(numbers[numeric].to_numpy(dtype="float64"))
        rows.ms[index] = ms
        for position in index[~np.isfinite(ms)]:
            rows.fail(int(position), NO_UNIT)
    if dated:
        rows.ms[dated] = _dated_text_ms(stripped[dated])


def _dated_text_ms(texts: pd.Series) -> np.ndarray:
    """ISO-8601 first (fast, exact), then any other dated form; naive text is UTC."""
    ms = _parse(texts, "ISO8601")
    rest = np.isnan(ms)
    if rest.any():
        ms[rest] = _parse(texts[rest], "mixed")
    return ms


def _parse(texts: pd.Series, fmt: str) -> np.ndarray:
    try:
        parsed = pd.to_datetime(texts, utc=True, errors="coerce", format=fmt)
        return _datetimes_ms(pd.Series(parsed))
    except (TypeError, ValueError, OverflowError):
        return np.array([_parse_one(text, fmt) for text in texts], dtype="float64")


def _parse_one(text: str, fmt: str) -> float:
    try:
        parsed = pd.to_datetime(pd.Series([text]), utc=True, errors="coerce", format=fmt)
        return float(_datetimes_ms(parsed)[0])
    except (TypeError, ValueError, OverflowError):
        return float("nan")
