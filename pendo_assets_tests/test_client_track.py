"""Track events: one request each, exact payload, any 2xx is success."""

from __future__ import annotations

from typing import Any

import pytest

from pendo_assets.client import FailureKind, PendoClient, TrackEvent


def test_track_event_payload_is_exact(sandbox: Any, client: PendoClient) -> None:
    event = TrackEvent(
        event="Feature Activated",
        visitor_id="user-123",
        account_id="acct-456",
        timestamp=1_524_069_206_000,
        properties={"feature": "dashboard"},
        context={"ip": "1.2.3.4", "userAgent": "Mozilla/5.0"},
        record_id="evt-1",
    )
    result = client.send_track_event(event)
    assert (result.ok, result.record_id, result.retried) == (True, "evt-1", False)
    [request] = sandbox.state()["requests"]
    assert (request["method"], request["path"]) == ("POST", "/data/track")
    assert request["body"] == {
        "type": "track",
        "event": "Feature Activated",
        "visitorId": "user-123",
        "accountId": "acct-456",
        "timestamp": 1_524_069_206_000,
        "properties": {"feature": "dashboard"},
        "context": {"ip": "1.2.3.4", "userAgent": "Mozilla/5.0"},
    }
    [stored] = sandbox.state()["events"]
    assert stored["visitorId"] == "user-123"


def test_minimal_event_sends_empty_context(sandbox: Any, client: PendoClient) -> None:
    client.send_track_event(TrackEvent(event="e", visitor_id="v", timestamp=1_700_000_000_000))
    assert sandbox.state()["requests"][0]["body"] == {
        "type": "track",
        "event": "e",
        "visitorId": "v",
        "timestamp": 1_700_000_000_000,
        "context": {},
    }


@pytest.mark.parametrize("status", [201, 202, 204])
def test_any_2xx_is_success(sandbox: Any, client: PendoClient, status: int) -> None:
    sandbox.script_faults([{"status": status, "body": "whatever"}])
    assert client.send_track_event(
        TrackEvent(event="e", visitor_id="v", timestamp=1_700_000_000_000)
    ).ok


def test_rejected_event_fails_with_status_and_message(sandbox: Any, client: PendoClient) -> None:
    # The sandbox refuses timestamps that look like seconds, as Pendo would not process them.
    result = client.send_track_event(TrackEvent(event="e", visitor_id="v", timestamp=1_700_000_000))
    assert (result.ok, result.status, result.kind) == (False, 400, FailureKind.HTTP)
    assert result.reason.startswith("HTTP 400: ")
    assert "timestamp" in result.reason
    assert sandbox.state()["events"] == []


def test_non_integer_timestamp_is_refused_before_sending(client: PendoClient) -> None:
    with pytest.raises(TypeError, match="integer milliseconds"):
        client.send_track_event(TrackEvent(event="e", visitor_id="v", timestamp=1.5e12))  # type: ignore[arg-type]
