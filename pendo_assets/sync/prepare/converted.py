"""What converting one column yields, and which warehouse values count as missing.

Every converter returns plain Python values plus a mask of the rows it could not convert, so
one bad value fails its own row and never the partition. Rows can fail for different reasons
(a list here, a lone surrogate there): `reasons` holds those that differ from `reason`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Converted:
    """Plain Python values for one column, and where conversion failed and why."""

    values: list[Any]
    invalid: np.ndarray  # bool per row
    reason: str = ""
    reasons: Mapping[int, str] = field(default_factory=dict)  # per row, where not `reason`

    def reason_at(self, position: int) -> str:
        """Why the row at `position` failed."""
        return self.reasons.get(position, self.reason)


def is_missing(value: Any) -> bool:
    """None, NaN, NA or NaT of any library: a NULL from the warehouse, never a failure."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, Decimal):
        return value.is_nan()
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return False


def plain(column: pd.Series) -> list[Any]:
    """Python objects with every kind of missing value (NaN, NA, NaT) as None."""
    return column.to_numpy(dtype=object, na_value=None).tolist()


def all_text_utf8(texts: list[str]) -> bool:
    """`is_text_utf8` of every text, in one C-speed pass when all are ASCII (the common case)."""
    return "".join(texts).isascii() or all(map(is_text_utf8, texts))


def is_text_utf8(text: str) -> bool:
    """False for text no UTF-8 request body can carry (a lone surrogate from a bad decode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
