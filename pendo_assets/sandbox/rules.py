"""Pendo's acceptance rules, as pure functions: no HTTP, no state.

Kept apart so the rules can be read (and changed) in one place when more is learnt about the
real API. Error strings never mention a record's id or position: the real Pendo does not say
which record failed, and clients must not come to rely on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from types import NoneType
from typing import Any

import orjson

ID_KEYS: dict[str, str] = {"visitor": "visitorId", "account": "accountId"}
GROUPS: tuple[str, ...] = ("custom", "agent")
MAX_PROPERTIES_BYTES = 512
MIN_TIMESTAMP_MS = 100_000_000_000  # 1e11: anything smaller is almost certainly seconds
_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")


# Built once: json.dumps builds a new encoder on every call that passes options, which costs as
# much as writing a small body.
_COMPACT_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def parse_json(body: bytes) -> tuple[Any, str | None]:
    """(value, None) or (None, why not).

    Strict, as a real JSON parser is: UTF-8 only (RFC 8259 for JSON between systems), and
    NaN and Infinity, which Python's json writes for pandas gaps, are refused rather than
    accepted and stored; so are numbers beyond a double (1e400) and text with half a surrogate
    pair: stored, either made every later state answer fail. Integers beyond 64 bits become
    the nearest double, as in a parser that reads numbers into doubles. orjson, not the json
    module: it parses a 1,000-record batch in half the time (measured 0.23 against 0.47 ms),
    and the parse was a quarter of the sandbox's CPU under a million-row sync.
    """
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError as exc:
        near = f", near {exc.doc[exc.pos : exc.pos + 20]!r}" if exc.doc else ""
        return None, f"body is not valid JSON: {exc}{near}"


def type_error(type_name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for a field of ``type_name``, or None if it is.

    ``null`` is acceptable for every type: it clears the value.
    """
    if value is None:
        return None
    ok: bool
    if type_name == "string":
        ok = isinstance(value, str)
    elif type_name == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif type_name == "boolean":
        ok = isinstance(value, bool)
    elif type_name == "time":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and _is_iso8601(value)
        )
    else:  # pragma: no cover - the config rejects unknown types
        ok = False
    return None if ok else f"expects {type_name}, got {json_type(value)}"


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_iso8601(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


# Per field type, the exact value types it takes without a closer look: what a JSON parser
# makes of a valid value. Anything else goes through ``type_error``, which has the final word;
# this only spares the common case a call per value.
_PLAINLY_ACCEPTED: dict[str, frozenset[type]] = {
    "string": frozenset({str, NoneType}),
    "number": frozenset({int, float, NoneType}),
    "boolean": frozenset({bool, NoneType}),
    "time": frozenset({int, NoneType}),
}


def metadata_record_error(
    kind: str, group: str, record: Any, declared: Mapping[str, str]
) -> str | None:
    """Why one record of a metadata write is refused, or None if it is acceptable.

    Checked against the fields declared for ``kind``/``group``. None means ``record`` is an
    object whose id key holds a non-empty string and whose ``values`` object holds declared
    fields with values of their types. No result object is built: this runs once per record.
    """
    id_key = ID_KEYS[kind]
    if not isinstance(record, dict):
        return f"record must be an object, got {json_type(record)}"
    record_id = record.get(id_key)
    if record_id is None:
        return f"record has no {id_key}"
    if not isinstance(record_id, str) or not record_id:
        return f"{id_key} must be a non-empty string"
    values = record.get("values")
    if not isinstance(values, dict):
        return f"values must be an object, got {json_type(values)}"
    problems: list[str] = []
    for name, value in values.items():
        type_name = declared.get(name)
        if type_name is None:
            problems.append(_undeclared(kind, group, name))
            continue
        if type(value) in _PLAINLY_ACCEPTED[type_name]:
            continue
        problem = type_error(type_name, value)
        if problem is not None:
            problems.append(f"field '{name}' {problem}")
    return "; ".join(problems) if problems else None


def _undeclared(kind: str, group: str, name: str) -> str:
    if group == "custom":
        return (
            f"field '{name}' is not a custom field of {kind}; add it under Settings > Data Mappings"
        )
    return f"field '{name}' is not an agent field of {kind}"


def track_event_error(body: Any) -> str | None:
    """Why a ``/data/track`` body is refused (HTTP 400), or None if it is acceptable."""
    if not isinstance(body, dict):
        return f"body must be a JSON object, got {json_type(body)}"
    if body.get("type") != "track":
        return "'type' must be \"track\""
    for key in ("event", "visitorId"):
        value = body.get(key)
        if not isinstance(value, str) or not value:
            return f"'{key}' is required and must be a non-empty string"
    timestamp = body.get("timestamp")
    if timestamp is None:
        return "'timestamp' is required (epoch milliseconds)"
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        return f"'timestamp' must be an integer in epoch milliseconds, got {json_type(timestamp)}"
    if timestamp < MIN_TIMESTAMP_MS:
        return "'timestamp' looks like seconds; send epoch milliseconds"
    if "context" not in body:
        return "'context' is required (it may be {})"
    if not isinstance(body["context"], dict):
        return f"'context' must be an object, got {json_type(body['context'])}"
    if "accountId" in body and not isinstance(body["accountId"], str):
        return f"'accountId' must be a string, got {json_type(body['accountId'])}"
    if "properties" in body and not isinstance(body["properties"], dict):
        return f"'properties' must be an object, got {json_type(body['properties'])}"
    return None


def is_hidden_property(name: str) -> bool:
    """True for property names Pendo silently hides."""
    if not _PROPERTY_NAME.fullmatch(name):
        return True
    return name.startswith("__") and name.endswith("__")


def properties_size(properties: Mapping[str, Any]) -> int:
    """Size in bytes of the compact UTF-8 JSON of ``properties``, as Pendo measures it."""
    return len(_COMPACT_ENCODER.encode(properties).encode("utf-8"))


def split_properties(properties: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(properties Pendo keeps, names it hides), both in the order they came."""
    kept: dict[str, Any] = {}
    hidden: list[str] = []
    for name, value in properties.items():
        if is_hidden_property(name):
            hidden.append(name)
        else:
            kept[name] = value
    return kept, hidden
