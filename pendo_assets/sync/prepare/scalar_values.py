"""One warehouse value as a JSON scalar without losing what it says, or why it cannot be one.

| value                               | sent as                                             |
|-------------------------------------|-----------------------------------------------------|
| None, NaN, NA, NaT                  | null                                                |
| str                                 | itself; fails if not valid UTF-8 (lone surrogate)   |
| bool, numpy bool                    | true/false                                          |
| int, numpy integer                  | the exact integer (past 2**53 too)                  |
| float, numpy float                  | the number; inf/-inf fail                           |
| Decimal, whole                      | the exact integer                                   |
| Decimal, fractional                 | a float when it round-trips exactly, else its text  |
| uuid.UUID                           | canonical text '1b4e28ba-2fa1-11d2-883f-0016d3cca427' |
| ipaddress address/network/interface | text '10.0.0.1', '10.0.0.0/8', '10.0.0.1/24'        |
| datetime.time                       | ISO text 'HH:MM:SS[.ffffff][+HH:MM]'                |
| datetime.timedelta, numpy timedelta | ISO-8601 duration text '[-]P[nD]T[nH][nM][n[.ffffff]S]' |
| bytes, list, tuple, dict, set, ...  | fails: no faithful JSON scalar                      |

Numbers beyond a float's range (about ±1.8e308, e.g. Decimal('1e400')) fail: no JSON reader
Pendo runs would keep them. Datetimes and dates are not handled here but by `instants`,
which converts a whole column of them at once.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from datetime import time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from pendo_assets.sync.prepare.converted import is_missing, is_text_utf8
from pendo_assets.sync.source.boolean_spellings import REASON as NOT_BOOLEAN
from pendo_assets.sync.source.boolean_spellings import NotABoolean

REASON = "value is not a JSON scalar (string, number, boolean or null)"
NOT_FINITE = "value is not a finite number"
NOT_UTF8 = "value is text that is not valid UTF-8 (a lone surrogate)"
_TEXT_FORMS = (  # lossless as their canonical text
    uuid.UUID,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
)


def json_scalar(value: Any) -> tuple[Any, str | None]:
    """(JSON scalar, None) or (None, why the value has no faithful JSON scalar)."""
    if is_missing(value):
        return None, None
    if isinstance(value, str):
        return (value, None) if is_text_utf8(value) else (None, NOT_UTF8)
    if isinstance(value, bool | np.bool_):
        return bool(value), None
    if isinstance(value, np.timedelta64):  # before integers: numpy counts it as one
        return iso_duration(int(np.array(value, dtype="timedelta64[us]").astype(np.int64))), None
    if isinstance(value, timedelta):
        return iso_duration(value // timedelta(microseconds=1)), None
    if isinstance(value, int | np.integer):
        return _integer(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return (number, None) if math.isfinite(number) else (None, NOT_FINITE)
    if isinstance(value, Decimal):
        return decimal_scalar(value)
    if isinstance(value, _TEXT_FORMS):
        return str(value), None
    if isinstance(value, time):
        return value.isoformat(), None
    if isinstance(value, NotABoolean):
        return None, f"value {short_repr(value.value)} {NOT_BOOLEAN}"
    if isinstance(value, bytes | bytearray | memoryview):
        return None, "value is bytes, which have no JSON form (cast them to text in the query)"
    return None, not_scalar(type(value).__name__)


def not_scalar(kind: str) -> str:
    """Why a value of this kind has no JSON scalar form."""
    return f"value is a {kind}, not a JSON scalar (string, number, boolean or null)"


def _integer(number: int) -> tuple[int | None, str | None]:
    try:
        float(number)
    except OverflowError:
        return None, NOT_FINITE
    return number, None


def decimal_scalar(value: Decimal) -> tuple[Any, str | None]:
    """Whole: the exact int. Fractional: a float when exact, else the decimal's own text."""
    if not value.is_finite():
        return None, NOT_FINITE
    number = float(value)
    if not math.isfinite(number):
        return None, NOT_FINITE
    if value == value.to_integral_value():
        return int(value), None
    if Decimal(repr(number)) == value:
        return number, None
    return str(value), None


def iso_duration(micros: int) -> str:
    """Microseconds as an ISO-8601 duration of days, hours, minutes, seconds: '-P1DT2H3M4.5S'."""
    sign = "-" if micros < 0 else ""
    seconds, micro = divmod(abs(micros), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    fraction = f".{micro:06d}".rstrip("0") if micro else ""
    date_part = f"{days}D" if days else ""
    clock = "".join(f"{n}{unit}" for n, unit in ((hour, "H"), (minute, "M")) if n)
    if second or fraction or not (date_part or clock):
        clock += f"{second}{fraction}S"
    return f"{sign}P{date_part}" + (f"T{clock}" if clock else "")


def short_repr(value: Any, limit: int = 40) -> str:
    """A value as it may appear in a failure reason: its repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
