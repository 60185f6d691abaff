"""JSON text of whole columns of values, spelled exactly as `record_keys.canonical_json`.

Record hashes must not change between releases (a changed spelling would resend every
record once), so each scalar is written the way `json` writes it, type by type, and anything
else goes through the same encoder. Encoding a column at a time and joining the pieces per
row is several times cheaper than one encoder call per row (measured in the engine).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring as _text  # C speed, as json.dumps uses
from typing import Any

from pendo_assets.sync.decide.record_keys import canonical_json


def encoded(values: Iterable[Any], *, strict: bool = False) -> list[str]:
    """Each value as JSON text, exactly as `canonical_json(value)` spells it.

    `strict` refuses NaN and infinities (ValueError), as a request body must. A column of one
    plain type (all text, all ints) is written by one C function per value.
    """
    items = values if isinstance(values, list) else list(values)
    kinds = set(map(type, items))
    if kinds == {str}:
        return list(map(_text, items))
    if kinds == {int}:
        return list(map(int.__repr__, items))
    if kinds <= {bool, type(None)}:
        return ["null" if v is None else "true" if v else "false" for v in items]
    if kinds == {str, type(None)}:
        return ["null" if v is None else _text(v) for v in items]
    if strict and float in kinds:
        for value in items:
            if type(value) is float and not math.isfinite(value):
                raise ValueError(f"{value!r} has no JSON form")
    return [_encode(value) for value in items]


def _encode(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _text(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    return canonical_json(value)  # floats (NaN spelling), containers, anything else


def objects(names: Sequence[str], columns: Sequence[Sequence[str]]) -> list[str]:
    """Per row, the JSON object `{name: value}` with sorted names, from encoded columns (at
    least one): one %-template filled per row in C, not one concatenation per column."""
    template, order = object_template(names)
    return fill(template, [columns[i] for i in order])


def object_template(names: Sequence[str]) -> tuple[str, list[int]]:
    """`{"a":%s,"b":%s}` for the names in sorted order (a `%` in a name escaped), and the
    order of the columns that fill it."""
    order = sorted(range(len(names)), key=lambda i: names[i])
    fields = ",".join(_text(names[i]).replace("%", "%%") + ":%s" for i in order)
    return "{" + fields + "}", order


def fill(template: str, columns: Sequence[Sequence[str]]) -> list[str]:
    """The template filled once per row from encoded columns (at least one), in C."""
    return list(map(template.__mod__, zip(*columns, strict=True)))
