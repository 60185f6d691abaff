"""Column-wise conversion of warehouse values into what Pendo's JSON accepts.

Each function takes a whole column and returns plain Python values plus a mask of the rows that
could not be converted, so a million rows cost a few vectorised passes, not a million Python
branches (object columns, which hold mixed Python values, are the exception).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

SECONDS_BELOW = 100_000_000_000  # epoch numbers under 1e11 are seconds, above are milliseconds
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_MS = pd.Timedelta(milliseconds=1)


@dataclass(frozen=True)
class Converted:
    """Plain Python values for one column, and where conversion failed and why."""

    values: list[Any]
    invalid: np.ndarray  # bool per row
    reason: str = ""


def _plain(column: pd.Series) -> list[Any]:
    """Python objects with every kind of missing value (NaN, NA, NaT) as None."""
    return column.to_numpy(dtype=object, na_value=None).tolist()


def _datetimes_to_ms(parsed: pd.Series) -> pd.Series:
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize("UTC")
    return (parsed - _EPOCH) // _MS


def _epoch_numbers_to_ms(numbers: pd.Series) -> pd.Series:
    seconds = numbers.abs() < SECONDS_BELOW
    return numbers.where(~seconds, numbers * 1000).round()


def to_epoch_ms(column: pd.Series) -> Converted:
    """Integer epoch milliseconds from datetimes, ISO-8601 text, or epoch seconds/milliseconds."""
    if pd.api.types.is_datetime64_any_dtype(column):
        ms = _datetimes_to_ms(column)
    elif pd.api.types.is_bool_dtype(column):
        ms = pd.Series(np.nan, index=column.index)
    elif pd.api.types.is_numeric_dtype(column):
        ms = _epoch_numbers_to_ms(column.astype("float64"))
    else:
        is_bool = column.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
        numbers = pd.to_numeric(column.where(~is_bool), errors="coerce")
        ms = _epoch_numbers_to_ms(numbers)
        rest = numbers.isna() & column.notna() & ~is_bool
        if rest.any():
            parsed = pd.to_datetime(column[rest], utc=True, errors="coerce", format="mixed")
            ms = ms.astype("float64")
            ms[rest] = _datetimes_to_ms(parsed).astype("float64")
    invalid = ms.isna().to_numpy()
    values = _plain(ms.astype("Int64"))
    return Converted(values, invalid, "is not a timestamp (datetime, ISO-8601 text, or epoch)")


def to_identifiers(column: pd.Series) -> Converted:
    """Ids as non-empty strings; integral floats (ints widened by a NULL) lose their `.0`."""
    if pd.api.types.is_float_dtype(column):
        # inf is no identifier; past 2**53 a float is no exact integer and Int64 would refuse it
        column = column.where(np.isfinite(column.to_numpy(dtype="float64", na_value=np.nan)))
        whole = column.dropna()
        if (whole == whole.round()).all() and (whole.abs() < 2**53).all():
            column = column.astype("Int64")
    if pd.api.types.is_bool_dtype(column):
        text = pd.Series([None] * len(column), index=column.index, dtype=object)
    else:
        text = pd.Series(_plain(column), index=column.index, dtype=object)
        text = text.map(lambda v: v if v is None or isinstance(v, str) else _id_text(v))
    stripped = text.map(lambda v: v.strip() if isinstance(v, str) else v)
    invalid = (stripped.isna() | (stripped == "")).to_numpy(dtype=bool)
    return Converted(_plain(text), invalid, "identifier is missing or empty")


def _id_text(value: Any) -> str | None:
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


_NOT_SCALAR = object()


def _scalar(value: Any) -> Any:
    """One object-column value as a JSON scalar, or _NOT_SCALAR."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)  # .item() would give integer nanoseconds
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else _NOT_SCALAR
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else (None if value.is_nan() else _NOT_SCALAR)
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, datetime | date):
        return to_epoch_ms(pd.Series([value], dtype=object)).values[0]
    return _NOT_SCALAR


def to_json_scalars(column: pd.Series) -> Converted:
    """JSON scalars: NaN and None become null, numpy types plain Python, datetimes epoch ms."""
    reason = "value is not a JSON scalar (string, number, boolean or null)"
    if pd.api.types.is_datetime64_any_dtype(column):
        converted = to_epoch_ms(column)
        return Converted(converted.values, np.zeros(len(column), dtype=bool), reason)
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_integer_dtype(column):
        return Converted(_plain(column), np.zeros(len(column), dtype=bool), reason)
    if pd.api.types.is_float_dtype(column):
        finite = column.isna() | np.isfinite(column.to_numpy(dtype="float64", na_value=np.nan))
        whole = column.dropna()
        if finite.all() and (whole == whole.round()).all() and (whole.abs() < 2**53).all():
            column = column.astype("Int64")
        values = _plain(column.where(finite))
        return Converted(values, ~finite.to_numpy(dtype=bool), "value is not a finite number")
    # A plain loop, not Series.map: map re-infers a dtype, so [1, None] became [1.0, nan] and
    # integers past 2**53 lost digits.
    mapped = [_scalar(value) for value in column.to_numpy(dtype=object)]
    invalid = np.fromiter((v is _NOT_SCALAR for v in mapped), dtype=bool, count=len(mapped))
    values = [None if v is _NOT_SCALAR else v for v in mapped]
    return Converted(values, invalid, reason)
