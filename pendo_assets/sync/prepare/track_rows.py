"""From a partition's DataFrame to track events: required fields, timestamps, properties."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pendo_assets.client import TrackEvent
from pendo_assets.sync.prepare.convert import (
    Converted,
    to_epoch_ms,
    to_identifiers,
    to_json_scalars,
)
from pendo_assets.sync.prepare.field_names import name_problem
from pendo_assets.sync.results import RowFailure
from pendo_assets.sync.spec import EVENT_ID_TARGET, TRACK_PLACES, SyncSpec

MAX_PROPERTIES_BYTES = 512
DAY_MS = 24 * 3600 * 1000
PROCESSING_WINDOW_MS = 7 * DAY_MS
EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: no product analytics event is older
IMPLAUSIBLE = "is before 2000-01-01 or more than a day after now: a wrong unit or a bad clock"


@dataclass
class PreparedEvents:
    rows: int
    visitor_ids: list[str | None]
    events: list[Any]
    timestamps: list[int | None]
    account_ids: list[Any]
    properties: list[dict[str, Any] | None]
    context: dict[str, list[Any]]
    sendable: np.ndarray
    failures: dict[int, RowFailure] = field(default_factory=dict)
    older_than_window: int = 0
    event_ids: list[str | None] | None = None  # from the `event_id` column, when mapped

    def event(self, position: int) -> TrackEvent:
        context = {
            key: values[position]
            for key, values in self.context.items()
            if values[position] is not None
        }
        return TrackEvent(
            event=self.events[position],
            visitor_id=self.visitor_ids[position],  # type: ignore[arg-type]
            timestamp=self.timestamps[position],  # type: ignore[arg-type]
            account_id=self.account_ids[position],
            properties=self.properties[position],
            context=context,
            record_id=self.visitor_ids[position],
        )


def _implausible(stamps: Converted, now_ms: int) -> Converted:
    """Instants no real event has: a misread unit or a broken clock, never sent as they are."""
    bad = np.zeros(len(stamps.values), dtype=bool)
    for position, ms in enumerate(stamps.values):
        bad[position] = ms is not None and not EARLIEST_MS <= ms <= now_ms + DAY_MS
    return Converted(stamps.values, bad, IMPLAUSIBLE)


def _parse_properties(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """A JSON object column value (dict or JSON text) as a dict, or why it is not one."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None, None
    if isinstance(value, str):
        if not value.strip():
            return None, None
        try:
            value = json.loads(value)
        except ValueError:
            return None, "is not valid JSON"
    if not isinstance(value, dict):
        return None, "is not a JSON object"
    return value, None


def prepare_events(spec: SyncSpec, frame: pd.DataFrame, *, now_ms: int) -> PreparedEvents:
    rows = len(frame)
    failures: dict[int, RowFailure] = {}

    def fail(converted: Converted, target: str, prefix: str, ids: list[Any]) -> None:
        for position in np.flatnonzero(converted.invalid):
            p = int(position)
            reason = f"{prefix}{converted.reason_at(p)}"
            failures.setdefault(p, RowFailure(p, ids[p], reason, field=target))

    visitors = to_identifiers(frame[spec.column_for("visitorId")])
    fail(visitors, "visitorId", "visitorId identifier ", visitors.values)
    ids = visitors.values
    names = to_identifiers(frame[spec.column_for("event")])
    fail(names, "event", "event name ", ids)
    stamps = to_epoch_ms(frame[spec.column_for("timestamp")])
    fail(stamps, "timestamp", "timestamp ", ids)
    fail(_implausible(stamps, now_ms), "timestamp", "timestamp ", ids)

    event_ids: list[str | None] | None = None
    event_id_column = spec.column_for(EVENT_ID_TARGET)
    if event_id_column is not None:
        converted_ids = to_identifiers(frame[event_id_column])
        fail(converted_ids, EVENT_ID_TARGET, "event_id identifier ", ids)
        event_ids = converted_ids.values

    account_column = spec.column_for("accountId")
    if account_column is None:
        accounts: list[Any] = [None] * rows
    else:
        converted = to_identifiers(frame[account_column])
        # A missing account is no account; a list or bytes as one fails the row.
        wrong = np.zeros(rows, dtype=bool)
        wrong[list(converted.reasons)] = True
        fail(Converted([], wrong, "", converted.reasons), "accountId", "accountId identifier ", ids)
        accounts = [
            None if bad else v for v, bad in zip(converted.values, converted.invalid, strict=True)
        ]

    context: dict[str, list[Any]] = {}
    extra: dict[str, list[Any]] = {}
    for column, target in spec.mapping.items():
        if target in (
            "visitorId",
            "event",
            "timestamp",
            "accountId",
            "properties",
            EVENT_ID_TARGET,
        ):
            continue
        converted = to_json_scalars(frame[column])
        fail(converted, target, f"column {column!r}: ", ids)
        place = TRACK_PLACES.get(target)
        if place is not None:
            context[place[1]] = converted.values
        else:
            extra[target] = converted.values

    properties = _merge_properties(spec, frame, extra, ids, failures)
    sendable = np.ones(rows, dtype=bool)
    sendable[list(failures)] = False
    timestamps = stamps.values
    old = sum(
        1
        for p in np.flatnonzero(sendable)
        if timestamps[p] is not None and timestamps[p] < now_ms - PROCESSING_WINDOW_MS
    )
    return PreparedEvents(
        rows=rows,
        visitor_ids=ids,
        events=names.values,
        timestamps=timestamps,
        account_ids=accounts,
        properties=properties,
        context=context,
        sendable=np.flatnonzero(sendable),
        failures=failures,
        older_than_window=old,
        event_ids=event_ids,
    )


def _merge_properties(
    spec: SyncSpec,
    frame: pd.DataFrame,
    extra: dict[str, list[Any]],
    ids: list[Any],
    failures: dict[int, RowFailure],
) -> list[dict[str, Any] | None]:
    """The JSON `properties` column merged with the mapped property columns (which win)."""
    json_column = spec.column_for("properties")
    rows = len(frame)
    base: list[Any] = (
        frame[json_column].to_numpy(dtype=object, na_value=None).tolist()
        if json_column is not None
        else [None] * rows
    )
    merged: list[dict[str, Any] | None] = [None] * rows
    extra_items = list(extra.items())
    for position in range(rows):
        if position in failures:
            continue
        parsed, problem = _parse_properties(base[position])
        if problem:
            failures[position] = RowFailure(
                position, ids[position], f"column {json_column!r} {problem}", field="properties"
            )
            continue
        props = dict(parsed) if parsed else {}
        for name, values in extra_items:
            props[name] = values[position]
        if not props and parsed is None and not extra_items:
            continue
        problem = _properties_problem(props)
        if problem:
            name, reason = problem
            failures[position] = RowFailure(position, ids[position], reason, field=name)
            continue
        merged[position] = props
    return merged


def _properties_problem(props: dict[str, Any]) -> tuple[str, str] | None:
    for name in props:
        problem = name_problem(name)
        if problem:
            return name, f"event property {problem}; Pendo would hide it"
    try:
        # Measured as the UTF-8 bytes sent: ASCII escapes would count "é" as 6 bytes, not 2.
        text = json.dumps(props, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        size = len(text.encode())
    except (TypeError, ValueError):
        return "properties", "properties are not JSON-serialisable"
    if size > MAX_PROPERTIES_BYTES:
        return (
            "properties",
            f"properties are {size} bytes; Pendo drops those over {MAX_PROPERTIES_BYTES} bytes",
        )
    return None
