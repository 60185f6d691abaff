"""Preflight against Pendo's metadata schema, and lossless coercion to each field's type.

Pendo refuses a value of the wrong type record by record, after the request. Knowing the
declared types up front turns "42" into 42 for a number field (nothing lost) and fails "lots"
on its own row, with its field, before anything is sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd

from pendo_assets.client import MetadataSchema
from pendo_assets.sync.prepare.convert import Converted, to_epoch_ms
from pendo_assets.sync.prepare.metadata_rows import PreparedMetadata
from pendo_assets.sync.prepare.scalar_values import decimal_scalar, short_repr
from pendo_assets.sync.results import RowFailure
from pendo_assets.sync.source.boolean_spellings import REASON as BOOLEAN_REASON
from pendo_assets.sync.source.boolean_spellings import parse_boolean
from pendo_assets.sync.spec import SyncSpec


class MissingFieldsError(Exception):
    """Mapped fields that Pendo does not have: nothing can succeed until an admin adds them."""


def missing_fields(schema: MetadataSchema, wanted: dict[str, Iterable[str]]) -> list[str]:
    """`group.field` names that are mapped but absent from Pendo's schema."""
    missing = []
    for group, names in wanted.items():
        declared = schema.fields(group)
        missing += [f"{group}.{name}" for name in names if name not in declared]
    return missing


def missing_fields_message(sync_name: str, kind: str, missing: list[str]) -> str:
    return (
        f"sync {sync_name!r}: Pendo has no {kind} metadata field(s) {', '.join(missing)}. "
        "Add them in Pendo under Settings > Data Mappings (custom fields) before syncing, or "
        "remove them from the mapping. Nothing was sent."
    )


_INTEGER_TEXT = re.compile(r"[+-]?\d+")


def _number(value: Any) -> tuple[bool, Any]:
    """Numbers as they are; numeric text exactly (integer text as an exact int, other text as
    a float only when the float says the same number). Booleans are no numbers."""
    if isinstance(value, bool):
        return False, value
    if isinstance(value, int):
        return True, value
    if isinstance(value, float):
        return math.isfinite(value), value
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER_TEXT.fullmatch(text):
            return True, int(text)
        try:
            number = Decimal(text)
        except InvalidOperation:
            return False, value
        converted, problem = decimal_scalar(number)
        return problem is None and isinstance(converted, int | float), float(number)
    return False, value


def _boolean(value: Any) -> tuple[bool, Any]:
    parsed = parse_boolean(value)
    return parsed is not None, parsed


def _string(value: Any) -> tuple[bool, Any]:
    if isinstance(value, str):
        return True, value
    if isinstance(value, bool):
        return True, "true" if value else "false"
    if isinstance(value, int | float):
        return True, str(value)
    return False, value


_COERCERS = {"number": _number, "boolean": _boolean, "string": _string}
_REASONS = {
    "number": "expects number",
    "boolean": f"expects boolean: it {BOOLEAN_REASON}",
    "string": "expects string",
}


def coerce(values: list[Any], type_name: str) -> Converted:
    """Values of one column coerced to a Pendo field type; None always passes (clears it)."""
    if type_name == "time":
        series = pd.Series(values, dtype=object)
        converted = to_epoch_ms(series)
        invalid = converted.invalid & series.notna().to_numpy()
        reasons = {p: f"expects a time: it {r}" for p, r in converted.reasons.items()}
        return Converted(converted.values, invalid, "expects a time (epoch or ISO-8601)", reasons)
    coercer = _COERCERS.get(type_name)
    if coercer is None or _already(values, type_name):  # unknown types are left to Pendo
        return Converted(values, np.zeros(len(values), dtype=bool))
    out: list[Any] = []
    invalid = np.zeros(len(values), dtype=bool)
    for index, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        ok, coerced = coercer(value)
        out.append(coerced if ok else None)
        invalid[index] = not ok
    return Converted(out, invalid, _REASONS[type_name])


# Per type, the value types that pass `coerce` unchanged (None always does). Floats are
# not here: a number field refuses infinities, which only a value-by-value look finds.
_PASSING = {
    "number": frozenset({int, type(None)}),
    "boolean": frozenset({bool, type(None)}),
    "string": frozenset({str, type(None)}),
}


def _already(values: list[Any], type_name: str) -> bool:
    """Every value already of the declared type: a column checked in C, not value by value."""
    return set(map(type, values)) <= _PASSING.get(type_name, frozenset())


def apply_schema(
    spec: SyncSpec, prepared: PreparedMetadata, schema: MetadataSchema, positions: np.ndarray
) -> np.ndarray:
    """Fail at once on fields Pendo lacks; coerce the values of the rows at `positions` to the
    declared types. Returns the positions still fit to send (the others are failed rows)."""
    wanted = {"custom": list(prepared.custom), "agent": list(prepared.agent)}
    missing = missing_fields(schema, wanted)
    if missing:
        raise MissingFieldsError(missing_fields_message(spec.name, spec.metadata_kind, missing))
    sendable = np.zeros(prepared.rows, dtype=bool)
    sendable[positions] = True
    for group, columns in (("custom", prepared.custom), ("agent", prepared.agent)):
        declared = schema.fields(group)
        for name, values in columns.items():
            converted = coerce(values, declared[name].type)
            target = name if group == "custom" else f"agent.{name}"
            for position in np.flatnonzero(converted.invalid & sendable):
                p = int(position)
                prepared.failures[p] = RowFailure(
                    p,
                    prepared.ids[p],
                    f"value {short_repr(values[p], 60)} does not fit Pendo field {target!r}: "
                    f"{converted.reason_at(p)}",
                    field=target,
                )
                sendable[p] = False
            if converted.values is not values:
                columns[name] = converted.values
                prepared.values_changed(group)
    return np.flatnonzero(sendable)
