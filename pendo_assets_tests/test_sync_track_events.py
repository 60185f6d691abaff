"""Track event syncs end to end against the sandbox: event bodies, bad rows, old events.

Every test here gives each visitor one event, so no test waits on Pendo's one-event-per-second
pacing (that is test_sync_delivery's subject).
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from pendo_assets.client import PendoClient
from pendo_assets.sync.engine import SyncOptions, run_sync
from pendo_assets.sync.prepare.scalar_values import not_scalar
from pendo_assets.sync.results import RowFailure, SyncReport
from pendo_assets.sync.spec import SourceSpec, SyncSpec

PARTITION = "2026-11-02"
T = 1_793_613_600_000  # 2026-11-02T10:00:00Z in epoch milliseconds
DAY_MS = 24 * 3_600_000

FULL_MAPPING = {
    "visitor_id": "visitorId",
    "account_id": "accountId",
    "event_name": "event",
    "occurred_at": "timestamp",
    "props": "properties",
    "feature": "feature",
    "duration_ms": "duration_ms",
    "ip": "context_ip",
    "user_agent": "context_user_agent",
    "url": "context_url",
    "title": "context_title",
}
MINIMAL_MAPPING = {"visitor_id": "visitorId", "event_name": "event", "occurred_at": "timestamp"}


def events_spec(mapping: dict[str, str]) -> SyncSpec:
    return SyncSpec(
        name="events",
        object_type="track_events",
        source=SourceSpec(partition_column="occurred_at", table="events"),
        mapping=mapping,
    )


def warehouse_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, dtype=object)


def sync(
    spec: SyncSpec, frame: pd.DataFrame, client: PendoClient, now_ms: int = T + DAY_MS
) -> SyncReport:
    report = run_sync(
        spec, frame, client, partition_key=PARTITION, options=SyncOptions(now_ms=now_ms)
    )
    assert report.rows == report.sent + report.failed + report.skipped
    return report


def bodies(sandbox: Any) -> list[Any]:
    """Bodies of the /data/track requests, ordered by visitor id (sends are concurrent)."""
    requests = sandbox.state()["requests"]
    assert {r["path"] for r in requests} <= {"/data/track"}
    return sorted((r["body"] for r in requests), key=lambda body: body["visitorId"])


def row(visitor: str, **values: Any) -> dict[str, Any]:
    return {"visitor_id": visitor, "event_name": "report_viewed", "occurred_at": T, **values}


# -- event bodies ------------------------------------------------------------------------------


def test_an_event_arrives_with_every_mapped_place_filled(sandbox: Any, client: PendoClient) -> None:
    frame = warehouse_frame(
        [
            {
                "visitor_id": "v-1",
                "account_id": "a-1",
                "event_name": "report_viewed",
                "occurred_at": T,
                "props": '{"source": "email", "rows": 20}',
                "feature": "reports",
                "duration_ms": 1200,
                "ip": "10.0.0.1",
                "user_agent": "Mozilla/5.0",
                "url": "https://app.example.com/reports",
                "title": "Reports",
            }
        ]
    )
    report = sync(events_spec(FULL_MAPPING), frame, client)
    body = {
        "type": "track",
        "event": "report_viewed",
        "visitorId": "v-1",
        "accountId": "a-1",
        "timestamp": T,
        "properties": {"source": "email", "rows": 20, "feature": "reports", "duration_ms": 1200},
        "context": {
            "ip": "10.0.0.1",
            "userAgent": "Mozilla/5.0",
            "url": "https://app.example.com/reports",
            "title": "Reports",
        },
    }
    assert bodies(sandbox) == [body]
    assert sandbox.state()["events"] == [
        {**body, "hidden_properties": [], "properties_too_large": False, "sequence": 1}
    ]
    assert (report.rows, report.sent, report.failed, report.requests) == (1, 1, 0, 1)


def test_a_mapped_property_column_wins_over_the_json_properties_column(
    sandbox: Any, client: PendoClient
) -> None:
    mapping = {**MINIMAL_MAPPING, "props": "properties", "feature": "feature"}
    frame = warehouse_frame(
        [
            row("v-1", props='{"feature": "old", "plan": "pro"}', feature="new"),
            row("v-2", props={"feature": "old", "nested": {"a": [1]}}, feature=None),
        ]
    )
    sync(events_spec(mapping), frame, client)
    assert [body["properties"] for body in bodies(sandbox)] == [
        {"feature": "new", "plan": "pro"},
        {"feature": None, "nested": {"a": [1]}},
    ]


def test_absent_account_properties_and_context_are_left_out(
    sandbox: Any, client: PendoClient
) -> None:
    mapping = {
        **MINIMAL_MAPPING,
        "account_id": "accountId",
        "props": "properties",
        "ip": "context_ip",
    }
    frame = warehouse_frame(
        [
            row("v-1", account_id=None, props=None, ip=None),
            row("v-2", account_id="", props="  ", ip=float("nan")),
        ]
    )
    report = sync(events_spec(mapping), frame, client)
    assert bodies(sandbox) == [
        {"type": "track", "event": "report_viewed", "visitorId": v, "timestamp": T, "context": {}}
        for v in ("v-1", "v-2")
    ]
    assert (report.sent, report.failed) == (2, 0)


def test_numeric_ids_and_every_timestamp_form_arrive_as_text_and_epoch_ms(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame(
        [
            {"visitor_id": 1, "event_name": "e", "occurred_at": datetime(2026, 11, 2, 10)},
            {"visitor_id": 2, "event_name": "e", "occurred_at": "2026-11-02T12:00:00+02:00"},
            {"visitor_id": 3, "event_name": "e", "occurred_at": T // 1000},
            {"visitor_id": 4, "event_name": "e", "occurred_at": str(T)},
        ]
    )
    sync(events_spec(MINIMAL_MAPPING), frame, client)
    assert [(b["visitorId"], b["timestamp"]) for b in bodies(sandbox)] == [
        ("1", T),
        ("2", T),
        ("3", T),
        ("4", T),
    ]


# -- bad rows ----------------------------------------------------------------------------------


def test_each_bad_row_fails_alone_with_its_field_and_reason(
    sandbox: Any, client: PendoClient
) -> None:
    mapping = {**MINIMAL_MAPPING, "props": "properties", "feature": "feature"}
    frame = warehouse_frame(
        [
            row("v-ok", props='{"plan": "pro"}', feature="reports"),
            row(None),
            row("   "),
            row("v-no-event", event_name=""),
            row("v-when", occurred_at="last tuesday"),
            row("v-no-when", occurred_at=None),
            row("v-dash", props='{"bad-name": 1}'),
            row("v-digit", props='{"1st": 1}'),
            row("v-dunder", props='{"__meta__": 1}'),
            row("v-long-name", props=json.dumps({"p" * 33: 1})),
            row("v-big", props=json.dumps({"note": "x" * 600})),
            row("v-json", props='{"plan": '),
            row("v-array", props="[1, 2]"),
            row("v-nan", props='{"score": NaN}'),
            row("v-dict", feature={"a": 1}),
        ]
    )
    report = sync(events_spec(mapping), frame, client)
    hidden = "; Pendo would hide it"
    assert report.failures == [
        RowFailure(1, None, "visitorId identifier is missing or empty", field="visitorId"),
        # ids are stripped: a blank id is a missing one
        RowFailure(2, None, "visitorId identifier is missing or empty", field="visitorId"),
        RowFailure(3, "v-no-event", "event name is missing or empty", field="event"),
        RowFailure(
            4,
            "v-when",
            "timestamp is not an absolute instant (a relative word, or no date with a year)",
            field="timestamp",
        ),
        RowFailure(5, "v-no-when", "timestamp is missing", field="timestamp"),
        RowFailure(
            6,
            "v-dash",
            "event property name 'bad-name' may hold only letters, digits and underscores" + hidden,
            field="bad-name",
        ),
        RowFailure(
            7, "v-digit", "event property name '1st' starts with a digit" + hidden, field="1st"
        ),
        RowFailure(
            8,
            "v-dunder",
            "event property name '__meta__' is wrapped in double underscores" + hidden,
            field="__meta__",
        ),
        RowFailure(
            9,
            "v-long-name",
            f"event property name {'p' * 33!r} is longer than 32 characters" + hidden,
            field="p" * 33,
        ),
        RowFailure(
            10,
            "v-big",
            # {"note":"x...x","feature":null}: the mapped column counts too, even when null
            "properties are 626 bytes; Pendo drops those over 512 bytes",
            field="properties",
        ),
        RowFailure(11, "v-json", "column 'props' is not valid JSON", field="properties"),
        RowFailure(12, "v-array", "column 'props' is not a JSON object", field="properties"),
        RowFailure(13, "v-nan", "properties are not JSON-serialisable", field="properties"),
        RowFailure(14, "v-dict", f"column 'feature': {not_scalar('dict')}", field="feature"),
    ]
    assert (report.rows, report.sent, report.failed, report.skipped) == (15, 1, 14, 0)
    assert [b["visitorId"] for b in bodies(sandbox)] == ["v-ok"]
    assert sandbox.state()["counters"]["properties_too_large"] == 0


def test_properties_are_measured_in_utf8_bytes_as_pendo_does(
    sandbox: Any, client: PendoClient
) -> None:
    mapping = {**MINIMAL_MAPPING, "props": "properties"}
    fits = {"note": "é" * 200}  # 411 bytes of UTF-8 (1211 as ASCII-escaped JSON)
    too_big = {"note": "é" * 300}  # 611 bytes of UTF-8
    frame = warehouse_frame([row("v-fits", props=fits), row("v-big", props=too_big)])
    report = sync(events_spec(mapping), frame, client)
    assert report.failures == [
        RowFailure(
            1,
            "v-big",
            "properties are 611 bytes; Pendo drops those over 512 bytes",
            field="properties",
        )
    ]
    [stored] = sandbox.state()["events"]
    assert (stored["visitorId"], stored["properties"], stored["properties_too_large"]) == (
        "v-fits",
        fits,
        False,
    )


def test_a_timestamp_before_2000_or_over_a_day_ahead_fails_before_sending(
    sandbox: Any, client: PendoClient
) -> None:
    now = T + DAY_MS
    frame = warehouse_frame(
        [
            row("v-epoch", occurred_at=5),  # 5 s after the epoch
            row("v-1999", occurred_at="1999-12-31T23:59:59.999Z"),
            row("v-ahead", occurred_at=now + DAY_MS + 1),
            row("v-edge", occurred_at=now + DAY_MS),  # exactly a day ahead: plausible
            row("v-2000", occurred_at="2000-01-01T00:00:00Z"),
        ]
    )
    report = sync(events_spec(MINIMAL_MAPPING), frame, client, now_ms=now)
    reason = (
        "timestamp is before 2000-01-01 or more than a day after now: a wrong unit or a bad clock"
    )
    assert report.failures == [
        RowFailure(0, "v-epoch", reason, field="timestamp"),
        RowFailure(1, "v-1999", reason, field="timestamp"),
        RowFailure(2, "v-ahead", reason, field="timestamp"),
    ]
    assert [b["visitorId"] for b in bodies(sandbox)] == ["v-2000", "v-edge"]


def test_epoch_units_of_every_size_and_overflowing_numbers_fail_or_convert_alone(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame(
        [
            row("v-us", occurred_at=T * 1000),
            row("v-ns", occurred_at=T * 1_000_000),
            row("v-huge", occurred_at=1e300),
            row("v-inf", occurred_at=float("inf")),
            row("v-big-int", occurred_at=2**80),
            row("v-now", occurred_at="now"),
        ]
    )
    report = sync(events_spec(MINIMAL_MAPPING), frame, client)
    no_unit = "timestamp is a number of no epoch unit (seconds to nanoseconds), or not finite"
    assert report.failures == [
        RowFailure(2, "v-huge", no_unit, field="timestamp"),
        RowFailure(3, "v-inf", no_unit, field="timestamp"),
        RowFailure(4, "v-big-int", no_unit, field="timestamp"),
        RowFailure(
            5,
            "v-now",
            "timestamp is not an absolute instant (a relative word, or no date with a year)",
            field="timestamp",
        ),
    ]
    assert [(b["visitorId"], b["timestamp"]) for b in bodies(sandbox)] == [("v-ns", T), ("v-us", T)]


def test_ids_and_values_of_no_faithful_json_form_fail_their_row(
    sandbox: Any, client: PendoClient
) -> None:
    mapping = {**MINIMAL_MAPPING, "account_id": "accountId", "ip": "context_ip", "n": "n"}
    frame = warehouse_frame(
        [
            row(
                " v-ok ",
                account_id=Decimal("501.00"),
                ip=ipaddress.ip_address("10.0.0.1"),
                n=Decimal("2.5"),
            ),
            row(b"abc"),
            row(["a", "b"]),
            row("v-acct", account_id=["a"]),
            row("v-bytes", n=b"x"),
            row("v-surrogate", n="bad \ud800"),
            row("v-event", event_name={"e": 1}),
        ]
    )
    report = sync(events_spec(mapping), frame, client)
    assert report.failures == [
        RowFailure(
            1, None, "visitorId identifier is a bytes, not text or an integer", field="visitorId"
        ),
        RowFailure(
            2, None, "visitorId identifier is a list, not text or an integer", field="visitorId"
        ),
        RowFailure(
            3, "v-acct", "accountId identifier is a list, not text or an integer", field="accountId"
        ),
        RowFailure(
            4,
            "v-bytes",
            "column 'n': value is bytes, which have no JSON form (cast them to text in the query)",
            field="n",
        ),
        RowFailure(
            5,
            "v-surrogate",
            "column 'n': value is text that is not valid UTF-8 (a lone surrogate)",
            field="n",
        ),
        RowFailure(6, "v-event", "event name is a dict, not text or an integer", field="event"),
    ]
    [body] = bodies(sandbox)
    assert (body["visitorId"], body["accountId"], body["context"], body["properties"]) == (
        "v-ok",
        "501",
        {"ip": "10.0.0.1"},
        {"n": 2.5},
    )


# -- Pendo's 7-day processing window -----------------------------------------------------------


def test_events_older_than_seven_days_are_sent_counted_and_warned_about(
    sandbox: Any, client: PendoClient
) -> None:
    now = T + 7 * DAY_MS + 1
    frame = warehouse_frame(
        [
            row("v-old-1"),  # 7 days and 1 ms old
            row("v-old-2", occurred_at=T - DAY_MS),
            row("v-edge", occurred_at=T + 1),  # exactly 7 days old: inside the window
            row("v-bad", occurred_at=T - DAY_MS, event_name=""),  # failed rows are not counted
        ]
    )
    report = sync(events_spec(MINIMAL_MAPPING), frame, client, now_ms=now)
    assert report.warnings == [
        "2 event(s) are older than Pendo's 7-day processing window: Pendo accepts them but its "
        "regular jobs may not process them"
    ]
    assert (report.sent, report.failed) == (3, 1)
    assert len(sandbox.state()["events"]) == 3


def test_recent_events_bring_no_warning(sandbox: Any, client: PendoClient) -> None:
    report = sync(events_spec(MINIMAL_MAPPING), warehouse_frame([row("v-1")]), client, now_ms=T)
    assert (report.warnings, report.sent) == ([], 1)
