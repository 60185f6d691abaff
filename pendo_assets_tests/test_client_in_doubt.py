"""Lost answers: track events are never sent twice; idempotent requests are retried as before."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from pendo_assets.client import (
    FailureKind,
    MetadataRecord,
    PendoClient,
    RetryPolicy,
    TrackEvent,
)
from pendo_assets.sandbox import SandboxConfig, SandboxServer
from pendo_assets_tests.client_fixtures import FakeClock

EVENT = TrackEvent(event="Signed Up", visitor_id="v-1", timestamp=1_700_000_000_000)
ONE = [MetadataRecord("v-1", {"plan": "pro"})]
NOT_RESENT = " on POST /data/track; not sent again, as a second send could record it twice"


def track_requests(sandbox: Any) -> int:
    return sum(1 for r in sandbox.state()["requests"] if r["path"] == "/data/track")


def test_event_kept_then_connection_dropped_is_in_doubt_and_not_resent(
    sandbox: Any, client: PendoClient, fake_clock: FakeClock
) -> None:
    sandbox.script_faults([{"drop": True, "after_effect": True}])
    result = client.send_track_event(EVENT)
    assert (result.ok, result.kind, result.retried, result.status) == (
        False,
        FailureKind.IN_DOUBT,
        False,
        None,
    )
    assert result.reason.startswith(
        "Pendo may have received this event: answer lost (RemoteProtocolError: "
    )
    assert result.reason.endswith(")" + NOT_RESENT)
    assert len(sandbox.state()["events"]) == 1
    assert track_requests(sandbox) == 1
    assert fake_clock.sleeps == []


@pytest.mark.parametrize("status", [502, 504])
def test_event_kept_then_5xx_is_in_doubt_and_not_resent(
    sandbox: Any, client: PendoClient, status: int
) -> None:
    sandbox.script_faults([{"status": status, "after_effect": True}])
    result = client.send_track_event(EVENT)
    assert (result.ok, result.kind, result.retried, result.status) == (
        False,
        FailureKind.IN_DOUBT,
        False,
        status,
    )
    assert result.reason == (
        f"Pendo may have received this event: HTTP {status} injected fault" + NOT_RESENT
    )
    assert len(sandbox.state()["events"]) == 1
    assert track_requests(sandbox) == 1


def test_any_5xx_on_an_event_is_in_doubt_even_when_nothing_was_kept(
    sandbox: Any, client: PendoClient
) -> None:
    """The client cannot tell a 503 before the effect from one after it: it assumes the worst."""
    sandbox.script_faults([{"status": 503}])
    result = client.send_track_event(EVENT)
    assert (result.kind, result.status) == (FailureKind.IN_DOUBT, 503)
    assert sandbox.state()["events"] == []
    assert track_requests(sandbox) == 1


def test_dropped_connection_on_an_event_is_in_doubt(sandbox: Any, client: PendoClient) -> None:
    sandbox.script_faults([{"drop": True}])
    result = client.send_track_event(EVENT)
    assert result.kind == FailureKind.IN_DOUBT
    assert track_requests(sandbox) == 1


def test_in_doubt_sends_are_counted(sandbox: Any, client: PendoClient) -> None:
    sandbox.script_faults([{"status": 502, "after_effect": True}, {"drop": True}])
    client.send_track_event(EVENT)
    client.send_track_event(dataclasses.replace(EVENT, visitor_id="v-2"))
    stats = client.stats_snapshot()
    assert (stats.requests, stats.retries, stats.in_doubt, stats.records_retried) == (2, 0, 2, 0)


def test_event_read_timeout_is_in_doubt_and_pendo_still_keeps_it(
    sandbox_config: SandboxConfig, client_factory: Callable[..., PendoClient]
) -> None:
    slow = dataclasses.replace(sandbox_config, latency_ms=300)
    with SandboxServer(slow) as server:
        client = client_factory(base_url=server.url, timeout_seconds=0.05)
        result = client.send_track_event(EVENT)
        assert result.kind == FailureKind.IN_DOUBT
        assert result.reason.startswith(
            "Pendo may have received this event: answer lost (ReadTimeout: "
        )
        deadline = time.monotonic() + 5
        while not server.state(requests=False)["events"] and time.monotonic() < deadline:
            time.sleep(0.05)
        state = server.state()
    assert len(state["events"]) == 1  # the timeout was no proof that nothing happened
    assert state["counters"]["requests"] == 1


def test_event_connect_error_is_retried_until_attempts_run_out(
    client_factory: Callable[..., PendoClient], fake_clock: FakeClock
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = client_factory(
        base_url=f"http://127.0.0.1:{closed_port}", retry=RetryPolicy(max_attempts=3)
    )
    result = client.send_track_event(EVENT)
    assert (result.ok, result.kind, result.retried, result.status) == (
        False,
        FailureKind.UNAVAILABLE,
        True,
        None,
    )
    assert result.reason.startswith("Pendo did not accept POST /data/track after 3 attempt(s)")
    assert "ConnectError" in result.reason
    assert len(fake_clock.sleeps) == 2
    stats = client.stats_snapshot()
    assert (stats.requests, stats.retries, stats.in_doubt) == (3, 2, 0)


def test_event_429_is_retried_after_retry_after_then_accepted(
    sandbox: Any, client: PendoClient, fake_clock: FakeClock
) -> None:
    sandbox.script_faults([{"status": 429, "retry_after": "2"}])
    result = client.send_track_event(EVENT)
    assert (result.ok, result.retried) == (True, True)
    assert fake_clock.sleeps == [2.0]
    assert len(sandbox.state()["events"]) == 1
    assert track_requests(sandbox) == 2


def test_event_408_is_retried_then_accepted(sandbox: Any, client: PendoClient) -> None:
    sandbox.script_faults([{"status": 408}])
    result = client.send_track_event(EVENT)
    assert (result.ok, result.retried) == (True, True)
    assert len(sandbox.state()["events"]) == 1


def test_answer_lost_after_a_retried_429_is_in_doubt_and_marked_retried(
    sandbox: Any, client: PendoClient
) -> None:
    sandbox.script_faults(
        [{"status": 429, "retry_after": "0"}, {"drop": True, "after_effect": True}]
    )
    result = client.send_track_event(EVENT)
    assert (result.kind, result.retried) == (FailureKind.IN_DOUBT, True)
    assert len(sandbox.state()["events"]) == 1
    assert track_requests(sandbox) == 2


@pytest.mark.parametrize(
    "fault", [{"drop": True, "after_effect": True}, {"status": 502, "after_effect": True}]
)
def test_metadata_write_with_a_lost_answer_is_retried_and_accepted(
    sandbox: Any, client: PendoClient, fault: dict[str, Any]
) -> None:
    sandbox.script_faults([fault])
    [result] = client.write_metadata_batch("visitor", ONE, create=True)
    assert (result.ok, result.retried) == (True, True)
    state = sandbox.state()
    assert state["metadata"]["visitor"]["v-1"]["custom"] == {"plan": "pro"}
    assert state["counters"]["requests"] == 2
    assert client.stats_snapshot().in_doubt == 0


def test_schema_read_with_a_dropped_answer_is_retried(sandbox: Any, client: PendoClient) -> None:
    sandbox.script_faults([{"drop": True}])
    schema = client.read_schema("visitor")
    assert "plan" in schema.custom
    assert client.stats_snapshot().retries == 1
