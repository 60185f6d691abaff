"""Track events: required fields, pacing per visitor, the 512-byte limit, hidden property names."""

from __future__ import annotations

import json
import time
from itertools import count
from typing import Any

import httpx
import pytest

from pendo_assets.sandbox import SandboxServer

_visitors = count()


@pytest.fixture
def pendo(sandbox_http: httpx.Client, track_event_secret: str) -> httpx.Client:
    """The sandbox client carrying the track event secret."""
    sandbox_http.headers["x-pendo-integration-key"] = track_event_secret
    return sandbox_http


def event(**changes: Any) -> dict[str, Any]:
    """A valid event for a visitor no other test uses, so pacing never interferes."""
    body: dict[str, Any] = {
        "type": "track",
        "event": "Feature Activated",
        "visitorId": f"track-visitor-{next(_visitors)}",
        "accountId": "acct-456",
        "timestamp": 1_700_000_000_000,
        "properties": {"feature": "dashboard"},
        "context": {"ip": "1.2.3.4", "userAgent": "Mozilla/5.0"},
    }
    body.update(changes)
    return body


def send(pendo: httpx.Client, body: Any) -> httpx.Response:
    return pendo.post(
        "/data/track",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )


def events(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return sandbox.state(requests=False)["events"]


def test_valid_event_is_stored_and_answered_ok(sandbox: SandboxServer, pendo: httpx.Client) -> None:
    body = event()
    response = send(pendo, body)
    assert (response.status_code, response.text) == (200, "OK")
    [stored] = events(sandbox)
    assert stored == {
        **body,
        "hidden_properties": [],
        "properties_too_large": False,
        "sequence": 1,
    }


def test_events_are_kept_in_arrival_order(sandbox: SandboxServer, pendo: httpx.Client) -> None:
    for name in ("first", "second", "third"):
        assert send(pendo, event(event=name)).status_code == 200
    stored = events(sandbox)
    assert [(e["event"], e["sequence"]) for e in stored] == [
        ("first", 1),
        ("second", 2),
        ("third", 3),
    ]


def test_sending_an_event_twice_records_it_twice(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    send(pendo, event(visitorId="twice-a", event="e"))
    send(pendo, event(visitorId="twice-b", event="e"))
    assert len(events(sandbox)) == 2


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"type": "identify"}, "'type'"),
        ({"type": None}, "'type'"),
        ({"event": None}, "'event'"),
        ({"event": ""}, "'event'"),
        ({"event": 5}, "'event'"),
        ({"visitorId": None}, "'visitorId'"),
        ({"visitorId": ""}, "'visitorId'"),
        ({"visitorId": 12}, "'visitorId'"),
        ({"timestamp": None}, "'timestamp'"),
        ({"timestamp": "1700000000000"}, "'timestamp'"),
        ({"timestamp": 1_700_000_000_000.0}, "'timestamp'"),
        ({"timestamp": True}, "'timestamp'"),
        ({"context": None}, "'context'"),
        ({"context": "browser"}, "'context'"),
        ({"accountId": 456}, "'accountId'"),
        ({"properties": ["feature"]}, "'properties'"),
    ],
)
def test_invalid_event_field_is_400_naming_it(
    sandbox: SandboxServer, pendo: httpx.Client, changes: dict[str, Any], expected: str
) -> None:
    body = {key: value for key, value in event(**changes).items() if value is not None}
    response = send(pendo, body)
    assert response.status_code == 400
    assert expected in response.json()["message"]
    assert events(sandbox) == []


def test_missing_context_is_400_even_though_it_may_be_empty(pendo: httpx.Client) -> None:
    body = event()
    del body["context"]
    assert send(pendo, body).status_code == 400
    assert send(pendo, event(context={})).status_code == 200


def test_account_and_properties_are_optional(pendo: httpx.Client) -> None:
    body = event()
    del body["accountId"], body["properties"]
    assert send(pendo, body).status_code == 200


def test_timestamp_in_seconds_is_400(sandbox: SandboxServer, pendo: httpx.Client) -> None:
    response = send(pendo, event(timestamp=1_700_000_000))
    assert response.status_code == 400
    assert "looks like seconds" in response.json()["message"]
    assert events(sandbox) == []


@pytest.mark.parametrize("body", [[event()], "track", None])
def test_body_that_is_not_an_object_is_400(pendo: httpx.Client, body: Any) -> None:
    response = send(pendo, body)
    assert response.status_code == 400
    assert "object" in response.json()["message"]


def test_invalid_json_is_400(pendo: httpx.Client) -> None:
    response = pendo.post("/data/track", content=b'{"type": "track",')
    assert response.status_code == 400
    assert "JSON" in response.json()["message"]


def test_a_property_beyond_a_double_is_400_and_the_event_is_not_kept(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    body = json.dumps(event(visitorId="big", properties={"n": 1})).replace('"n": 1', '"n": 1e400')
    response = pendo.post("/data/track", content=body.encode())
    assert response.status_code == 400
    assert "infinity" in response.json()["message"]
    assert sandbox.state(requests=False)["events"] == []


def test_second_event_for_a_visitor_within_a_second_is_429_while_others_pass(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    assert send(pendo, event(visitorId="pacing-a", event="one")).status_code == 200
    paced = send(pendo, event(visitorId="pacing-a", event="two"))
    other = send(pendo, event(visitorId="pacing-b", event="three"))
    assert paced.status_code == 429
    assert paced.headers["Retry-After"] == "1"
    assert other.status_code == 200
    state = sandbox.state(requests=False)
    assert [e["event"] for e in state["events"]] == ["one", "three"]
    assert state["counters"]["pacing_429"] == 1


def test_refused_events_do_not_start_the_pacing_window(pendo: httpx.Client) -> None:
    assert send(pendo, event(visitorId="pacing-c", timestamp=5)).status_code == 400
    assert send(pendo, event(visitorId="pacing-c")).status_code == 200


def test_visitor_may_send_again_after_a_second(sandbox: SandboxServer, pendo: httpx.Client) -> None:
    assert send(pendo, event(visitorId="pacing-d", event="one")).status_code == 200
    time.sleep(1.05)  # the only real wait in the sandbox suite
    assert send(pendo, event(visitorId="pacing-d", event="two")).status_code == 200
    assert [e["event"] for e in events(sandbox)] == ["one", "two"]


def test_properties_over_512_bytes_are_flagged_and_dropped(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    # {"note":"..."} is 11 bytes of JSON around the value; "é" is 2 bytes in UTF-8.
    at_limit = {"note": "x" * 501}
    over_limit = {"note": "x" * 500 + "é"}
    assert send(pendo, event(properties=at_limit)).status_code == 200
    assert send(pendo, event(properties=over_limit)).status_code == 200
    state = sandbox.state(requests=False)
    fits, too_large = state["events"]
    assert (fits["properties"], fits["properties_too_large"]) == (at_limit, False)
    assert (too_large["properties"], too_large["properties_too_large"]) == ({}, True)
    assert state["counters"]["properties_too_large"] == 1


@pytest.mark.parametrize(
    "name",
    [
        "has space",
        "has-dash",
        "émoji",
        "1st_place",
        "a" * 33,
        "__private__",
        "__",
    ],
)
def test_badly_named_properties_are_hidden(
    sandbox: SandboxServer, pendo: httpx.Client, name: str
) -> None:
    assert send(pendo, event(properties={"kept": 1, name: 2})).status_code == 200
    [stored] = events(sandbox)
    assert stored["properties"] == {"kept": 1}
    assert stored["hidden_properties"] == [name]


@pytest.mark.parametrize("name", ["_leading", "trailing__", "__leading_only", "a" * 32, "Mixed_9"])
def test_well_named_properties_are_kept(
    sandbox: SandboxServer, pendo: httpx.Client, name: str
) -> None:
    assert send(pendo, event(properties={name: 1})).status_code == 200
    [stored] = events(sandbox)
    assert (stored["properties"], stored["hidden_properties"]) == ({name: 1}, [])
