"""Column-wise conversion of warehouse values into what Pendo's JSON accepts.

Each function takes a whole column and returns plain Python values plus a mask of the rows that
could not be converted, so a million rows cost a few vectorised passes, not a million pandas
calls. Object columns (mixed driver values) take one cheap Python pass to sort values by kind;
their datetimes and dates are then converted all at once (`instants`), the rest value by value
(`scalar_values`, whose table documents every conversion). Ids: `identifiers`.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pendo_assets.sync.prepare.converted import Converted, all_text_utf8, plain
from pendo_assets.sync.prepare.identifiers import to_identifiers
from pendo_assets.sync.prepare.instants import MISSING, to_epoch_ms
from pendo_assets.sync.prepare.scalar_values import NOT_FINITE, REASON, json_scalar

__all__ = ["Converted", "to_epoch_ms", "to_identifiers", "to_json_scalars"]


def to_json_scalars(column: pd.Series) -> Converted:
    """JSON scalars: NaN and None become null, numpy types plain Python, datetimes epoch ms."""
    rows = len(column)
    if pd.api.types.is_datetime64_any_dtype(column):
        converted = to_epoch_ms(column)
        bad = converted.invalid & column.notna().to_numpy(dtype=bool)
        return Converted(converted.values, bad, converted.reason, _only(converted, bad))
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_integer_dtype(column):
        return Converted(plain(column), np.zeros(rows, dtype=bool), REASON)
    if pd.api.types.is_float_dtype(column):
        return _floats(column)
    return _objects(column.to_numpy(dtype=object))


def _floats(column: pd.Series) -> Converted:
    numbers = column.to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isnan(numbers) | np.isfinite(numbers)
    whole = numbers[np.isfinite(numbers)]
    if finite.all() and (whole == np.round(whole)).all() and (np.abs(whole) < 2**53).all():
        return Converted(plain(column.astype("Int64")), np.zeros(len(column), dtype=bool))
    return Converted(plain(column.where(np.isfinite(numbers))), ~finite, NOT_FINITE)


# Ints beyond this have no float form: JSON readers would turn them into infinity.
_FLOAT_LIMIT = 2**1023


def _already_json(values: np.ndarray) -> list[object] | None:
    """The values themselves when all are text (UTF-8), booleans, ints or None: nothing to do
    (the common case, checked in a few C-speed passes instead of one call per value)."""
    kinds = set(map(type, values))
    if not kinds <= {str, bool, int, type(None)}:
        return None
    out = values.tolist()
    if str in kinds:  # a column of one kind is checked as it is, without a filtered copy
        texts = out if kinds == {str} else [v for v in out if type(v) is str]
        if not all_text_utf8(texts):
            return None
    if int in kinds:
        ints = out if kinds == {int} else [v for v in out if type(v) is int]
        if max(ints) >= _FLOAT_LIMIT or min(ints) <= -_FLOAT_LIMIT:
            return None
    return out  # type: ignore[no-any-return]


def _objects(values: np.ndarray) -> Converted:
    """Datetimes and dates in one vectorised pass; every other value on its own."""
    same = _already_json(values)
    if same is not None:
        return Converted(same, np.zeros(len(values), dtype=bool), REASON)
    out: list[object] = [None] * len(values)
    reasons: dict[int, str] = {}
    instants: list[int] = []
    for position, value in enumerate(values):
        if isinstance(value, date | np.datetime64):
            instants.append(position)
            continue
        out[position], problem = json_scalar(value)
        if problem:
            reasons[position] = problem
    if instants:
        converted = to_epoch_ms(pd.Series(values[instants], dtype=object))
        for index, position in enumerate(instants):
            out[position] = converted.values[index]
            if converted.invalid[index] and converted.reason_at(index) != MISSING:
                reasons[position] = f"value {converted.reason_at(index)}"
    invalid = np.zeros(len(values), dtype=bool)
    invalid[list(reasons)] = True
    return Converted(out, invalid, REASON, reasons)


def _only(converted: Converted, bad: np.ndarray) -> dict[int, str]:
    return {int(p): f"value {converted.reason_at(int(p))}" for p in np.flatnonzero(bad)}
