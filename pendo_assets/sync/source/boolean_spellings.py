"""Which values are booleans: True/False, the integers 0 and 1, and the usual spellings.

Accepted (text case-insensitive, surrounding whitespace ignored): true/false, t/f, yes/no,
1/0. Anything else ('lots', 1.5, 2, a 600-byte text) is no boolean and fails its row instead of
arriving in Pendo as `true`, which is what `bool(value)` would make of it.

SQLite keeps whatever was inserted into a BOOLEAN column. `SpelledBoolean` reads such a
column: spellings become True/False, anything else arrives as `NotABoolean`, which the value
conversion fails on its own row with the column named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

_SPELLINGS = {
    "true": True,
    "t": True,
    "yes": True,
    "1": True,
    "false": False,
    "f": False,
    "no": False,
    "0": False,
}
REASON = "is not a boolean (true/false, t/f, yes/no, 1/0)"


def parse_boolean(value: Any) -> bool | None:
    """The boolean a value spells, or None when it spells none."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _SPELLINGS.get(value.strip().lower())
    return None


@dataclass(frozen=True)
class NotABoolean:
    """A value read from a BOOLEAN column that spells no boolean, kept for the failure."""

    value: Any


class SpelledBoolean(sa.types.TypeDecorator[Any]):
    """Read a BOOLEAN column raw and judge each value by `parse_boolean`, never by `bool()`."""

    impl = sa.types.NullType
    cache_ok = True

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        parsed = parse_boolean(value)
        return NotABoolean(value) if parsed is None else parsed
