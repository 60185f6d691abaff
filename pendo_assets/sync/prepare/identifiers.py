"""Visitor, account, event and event-id identifiers as the exact text Pendo keys records by.

Accepted: text, integers (of any size), UUIDs, and floats or decimals that are whole numbers
(an integer column widened to float by a NULL, a `numeric(12,2)` id): 42.0 and
Decimal('42.00') are '42'. Surrounding whitespace is stripped, so ' v1' and 'v1' are one
visitor, and an id that is empty after stripping is missing. Anything else fails its row rather
than becoming junk text under upsert: booleans, fractional or non-finite numbers, bytes,
lists, dicts and other containers, and text that is not valid UTF-8 (a lone surrogate).
"""

from __future__ import annotations

import math
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from pendo_assets.sync.prepare.converted import (
    Converted,
    all_text_utf8,
    is_missing,
    is_text_utf8,
    plain,
)

REASON = "is missing or empty"  # callers say which id: "visitorId identifier ..."


def to_identifiers(column: pd.Series) -> Converted:
    """Ids as stripped non-empty text; invalid rows hold None (reasons where not missing)."""
    if pd.api.types.is_integer_dtype(column):
        values: list[Any] = [None if v is None else str(v) for v in plain(column)]
        invalid = np.array([v is None for v in values], dtype=bool)
        return Converted(values, invalid, REASON)
    raw = column.to_numpy(dtype=object)
    texts = _plain_texts(raw)
    if texts is not None:
        if all(texts):  # none empty after stripping (the common case): no pass per id
            return Converted(texts, np.zeros(len(texts), dtype=bool), REASON)
        values = [text or None for text in texts]
        invalid = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        return Converted(values, invalid, REASON)
    values = []
    reasons: dict[int, str] = {}
    for position, value in enumerate(raw):
        text, problem = _identifier(value)
        values.append(text)
        if problem:
            reasons[position] = problem
    invalid = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    return Converted(values, invalid, REASON, reasons)


def _plain_texts(values: np.ndarray) -> list[str] | None:
    """Stripped ids when every one is valid text (the common case, in a few C-speed passes)."""
    if set(map(type, values)) != {str}:
        return None
    texts = list(map(str.strip, values.tolist()))
    return texts if all_text_utf8(texts) else None


def _identifier(value: Any) -> tuple[str | None, str | None]:
    """(id text, None), (None, None) when missing, or (None, why it is no identifier)."""
    if is_missing(value):
        return None, None
    if isinstance(value, str):
        text = value.strip()
        if not is_text_utf8(text):
            return None, "is text that is not valid UTF-8 (a lone surrogate)"
        return (text or None), None
    if isinstance(value, bool | np.bool_):
        return None, "is a boolean, not text or an integer"
    if isinstance(value, int | np.integer) and not isinstance(value, np.timedelta64):
        return str(int(value)), None
    if isinstance(value, uuid.UUID):
        return str(value), None
    if isinstance(value, float | np.floating | Decimal):
        return _whole_number_text(value)
    return None, f"is a {type(value).__name__}, not text or an integer"


def _whole_number_text(value: float | np.floating | Decimal) -> tuple[str | None, str | None]:
    finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    if not finite:
        return None, f"{value} is not a finite number"
    if value != int(value):
        return None, f"{value} is not a whole number"
    return str(int(value)), None
