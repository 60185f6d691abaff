"""Preflight against Pendo's metadata schema, and lossless coercion to each field's type.

Pendo refuses a value of the wrong type record by record, after the request. Knowing the
declared types up front turns "42" into 42 for a number field (nothing lost) and fails "lots"
on its own row, with its field, before anything is sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from pendo_assets.client import MetadataSchema

from .convert import Converted, to_epoch_ms
from .metadata_rows import PreparedMetadata
from .results import RowFailure
from .spec import SyncSpec

_TRUE = {"true": True, "false": False}


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


def _number(value: Any) -> tuple[bool, Any]:
    if isinstance(value, bool):
        return False, value
    if isinstance(value, int | float):
        return True, value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return False, value
        if not math.isfinite(number):
            return False, value
        return True, int(number) if number.is_integer() and "." not in value else number
    return False, value


def _boolean(value: Any) -> tuple[bool, Any]:
    if isinstance(value, bool):
        return True, value
    if isinstance(value, int) and value in (0, 1):
        return True, bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True, _TRUE[value.strip().lower()]
    return False, value


def _string(value: Any) -> tuple[bool, Any]:
    if isinstance(value, str):
        return True, value
    if isinstance(value, bool):
        return True, "true" if value else "false"
    if isinstance(value, int | float):
        return True, str(value)
    return False, value


_COERCERS = {"number": _number, "boolean": _boolean, "string": _string}


def coerce(values: list[Any], type_name: str) -> Converted:
    """Values of one column coerced to a Pendo field type; None always passes (clears it)."""
    if type_name == "time":
        series = pd.Series(values, dtype=object)
        converted = to_epoch_ms(series)
        invalid = converted.invalid & series.notna().to_numpy()
        return Converted(converted.values, invalid, "expects a time (epoch ms or ISO-8601)")
    coercer = _COERCERS.get(type_name)
    if coercer is None:  # a type we do not know: leave the values to Pendo
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
    return Converted(out, invalid, f"expects {type_name}")


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
                    f"value {values[p]!r} does not fit Pendo field {target!r}: {converted.reason}",
                    field=target,
                )
                sendable[p] = False
            columns[name] = converted.values
    return np.flatnonzero(sendable)
