"""JSON text of whole columns of values, spelled exactly as `record_keys.canonical_json`.

Record hashes must not change between releases (a changed spelling would resend every
record once), so each scalar is written the way `json` writes it, type by type, and anything
else goes through the same encoder. Encoding a column at a time and joining the pieces per
row is several times cheaper than one encoder call per row (measured in the engine).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import repeat
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
    least one): the literal pieces between the values joined once per row, in C."""
    pieces, order = object_pieces(names)
    return fill(pieces, [columns[i] for i in order])


def object_pieces(names: Sequence[str]) -> tuple[list[str], list[int]]:
    """The literal text around the values of `{"a":..,"b":..}` for the names in sorted order
    (`['{"a":', ',"b":', '}']`), and the order of the columns that go between the pieces."""
    order = sorted(range(len(names)), key=lambda i: names[i])
    keys = [_text(names[i]) + ":" for i in order]
    pieces = ["{" + keys[0], *("," + key for key in keys[1:]), "}"]
    return pieces, order


def fill(pieces: Sequence[str], columns: Sequence[Sequence[str]]) -> list[str]:
    """Per row, `pieces[0] + row[0] + pieces[1] + ... + pieces[-1]` from encoded columns (at
    least one, one fewer than the pieces), each row one `str.join` in C: a third of the cost
    of filling a `%s` template, which parses the template again for every row."""
    if len(pieces) != len(columns) + 1:
        raise ValueError(f"{len(pieces)} pieces around {len(columns)} columns")
    rows = len(columns[0])
    interleaved: list[Iterable[str]] = [repeat(pieces[0], rows)]
    for column, piece in zip(columns, pieces[1:], strict=True):
        interleaved += [column, repeat(piece, rows)]
    return list(map("".join, zip(*interleaved, strict=True)))
