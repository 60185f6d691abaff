"""Any frame of warehouse values: every row is sent as its documented conversion, or fails alone.

Random frames mix nulls, unicode with lone surrogates, huge and non-finite numbers, containers,
bytes, decimals, UUIDs, IP addresses, datetimes with and without zones, dates, times, durations,
numpy scalars and booleans. For every row, preparation either keeps the row with each value
equal to an independent statement of the conversions, or fails it naming that row and one of
its columns; it never raises, and rows always equal sendable + failed + skipped.
"""

from __future__ import annotations

import ipaddress
import json
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pendo_assets.sync.prepare.metadata_rows import prepare_metadata
from pendo_assets.sync.prepare.track_rows import prepare_events
from pendo_assets.sync.spec import SourceSpec, SyncSpec

NOW_MS = 1_793_613_600_000  # 2026-11-02T10:00:00Z
DAY_MS = 86_400_000
EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
ZONES = (
    st.none()
    | st.just(UTC)
    | st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
)
DATETIMES = st.datetimes(timezones=ZONES)
SCALARS = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.just(pd.NaT),
    ANY_TEXT,
    st.booleans(),
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.floats(),
    st.decimals(),
    st.uuids(),
    st.ip_addresses(),
    DATETIMES,
    st.dates(),
    st.times(timezones=ZONES),
    st.timedeltas(),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.floats(width=32).map(np.float32),
    st.booleans().map(np.bool_),
)
IDS = st.one_of(
    ANY_TEXT,
    st.sampled_from(["v1", " v1", "v1 ", "  "]),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.none(),
    st.booleans(),
    st.binary(max_size=3),
    st.lists(st.text(max_size=2), max_size=2),
    st.uuids(),
)
TIMESTAMPS = st.one_of(
    DATETIMES,
    st.dates(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.integers(EARLIEST_MS, NOW_MS).flatmap(
        lambda ms: st.sampled_from([ms // 1000, ms, ms * 1000, ms * 1_000_000, str(ms)])
    ),
    st.sampled_from(["now", "today", "12:00", "2026-11-02T10:00:00Z", "1999-01-01", ""]),
    ANY_TEXT,
    st.none(),
    st.booleans(),
)


def _ms(value: datetime | date) -> int:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def expected_scalar(value: Any) -> Any:
    """The documented conversion of a value that converts (the row was kept, so it does)."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic) and not isinstance(value, np.bool_):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, Decimal):
        if value.is_nan():
            return None
        if value == value.to_integral_value():
            return int(value)
        return float(value) if Decimal(repr(float(value))) == value else str(value)
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, datetime | date):
        return _ms(value)
    return value  # str, int, float


def expected_id(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(int(value))


def assert_sendable_json(payloads: list[Any]) -> None:
    json.dumps(payloads, allow_nan=False, ensure_ascii=False).encode("utf-8")


def check_value(kept: Any, given_value: Any) -> None:
    if isinstance(given_value, timedelta):
        assert isinstance(kept, str) and kept.lstrip("-").startswith("P")
    else:
        assert kept == expected_scalar(given_value)
        assert type(kept) is type(expected_scalar(given_value))


METADATA = SyncSpec(
    name="visitors",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={"id": "visitorId", "a": "a", "b": "agent.b"},
)
EVENTS = SyncSpec(
    name="events",
    object_type="track_events",
    source=SourceSpec(partition_column="at", table="events"),
    mapping={"who": "visitorId", "what": "event", "at": "timestamp", "p": "p", "ip": "context_ip"},
)


@SETTINGS
@given(st.lists(st.tuples(IDS, SCALARS, SCALARS), max_size=8))
def test_metadata_rows_are_kept_as_converted_or_fail_alone(rows: list[tuple[Any, ...]]) -> None:
    frame = pd.DataFrame(rows, columns=["id", "a", "b"], dtype=object)
    prepared = prepare_metadata(METADATA, frame)
    sendable = [int(p) for p in prepared.sendable]
    assert len(rows) == len(sendable) + len(prepared.failures) + len(prepared.skipped)
    assert not set(sendable) & set(prepared.failures)
    for position, failure in prepared.failures.items():
        assert failure.row == position
        assert failure.field in {"visitorId", "a", "agent.b"}
    for position in sendable:
        given_id, a, b = rows[position]
        assert prepared.ids[position] == expected_id(given_id)
        check_value(prepared.custom["a"][position], a)
        check_value(prepared.agent["b"][position], b)
    assert_sendable_json(
        [[prepared.ids[p], prepared.custom["a"][p], prepared.agent["b"][p]] for p in sendable]
    )


@SETTINGS
@given(st.lists(st.tuples(IDS, IDS, TIMESTAMPS, SCALARS, SCALARS), max_size=8))
def test_event_rows_are_kept_as_converted_or_fail_alone(rows: list[tuple[Any, ...]]) -> None:
    frame = pd.DataFrame(rows, columns=["who", "what", "at", "p", "ip"], dtype=object)
    prepared = prepare_events(EVENTS, frame, now_ms=NOW_MS)
    sendable = [int(p) for p in prepared.sendable]
    assert len(rows) == len(sendable) + len(prepared.failures)
    for position, failure in prepared.failures.items():
        assert failure.row == position
        assert failure.field in {"visitorId", "event", "timestamp", "p", "context_ip", "properties"}
    for position in sendable:
        who, what, at, p, ip = rows[position]
        assert prepared.visitor_ids[position] == expected_id(who)
        assert prepared.events[position] == expected_id(what)
        stamp = prepared.timestamps[position]
        assert type(stamp) is int and EARLIEST_MS <= stamp <= NOW_MS + DAY_MS
        if isinstance(at, datetime | date):
            assert stamp == _ms(at)
        properties = prepared.properties[position]
        assert properties is not None
        check_value(properties["p"], p)
        check_value(prepared.context["ip"][position], ip)
    assert_sendable_json([prepared.event(p).payload() for p in sendable])


@SETTINGS
@given(st.lists(ANY_TEXT, min_size=1, max_size=6))
def test_text_is_kept_exactly_or_fails_when_it_is_not_utf8(texts: list[str]) -> None:
    frame = pd.DataFrame({"id": [f"v{i}" for i in range(len(texts))], "a": texts, "b": None})
    prepared = prepare_metadata(METADATA, frame.astype(object))
    for position, text in enumerate(texts):
        if _utf8(text):
            assert prepared.custom["a"][position] == text
        else:
            assert prepared.failures[position].field == "a"
