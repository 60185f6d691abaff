"""Retries: which failures are retried, how long the client waits, and when it gives up."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from pendo_assets.client import (
    FailureKind,
    MetadataRecord,
    PendoClient,
    PendoUnavailableError,
    RetryPolicy,
    TrackEvent,
    parse_retry_after,
)
from pendo_assets_tests.client_fixtures import FakeClock

ONE = [MetadataRecord("v-1", {"plan": "pro"})]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_status_is_retried_until_success(
    sandbox: Any, client: PendoClient, fake_clock: FakeClock, status: int
) -> None:
    sandbox.script_faults([{"status": status}])
    [result] = client.write_metadata_batch("visitor", ONE, create=True)
    assert (result.ok, result.retried) == (True, True)
    assert sandbox.state()["metadata"]["visitor"]["v-1"]["custom"] == {"plan": "pro"}
    stats = client.stats_snapshot()
    assert (stats.requests, stats.retries, stats.records_retried) == (2, 1, 1)
    assert len(fake_clock.sleeps) == 1


def test_dropped_connection_is_retried(sandbox: Any, client: PendoClient) -> None:
    sandbox.script_faults([{"drop": True}])
    [result] = client.write_metadata_batch("visitor", ONE, create=True)
    assert (result.ok, result.retried) == (True, True)
    assert client.stats_snapshot().retries == 1


def test_retry_after_seconds_is_honoured(
    sandbox: Any, client: PendoClient, fake_clock: FakeClock
) -> None:
    sandbox.script_faults([{"status": 429, "retry_after": "7"}])
    client.write_metadata_batch("visitor", ONE, create=True)
    assert fake_clock.sleeps == [7.0]


def test_retry_after_http_date_is_honoured(
    sandbox: Any, client: PendoClient, fake_clock: FakeClock
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    sandbox.script_faults([{"status": 503, "retry_after": format_datetime(when, usegmt=True)}])
    client.write_metadata_batch("visitor", ONE, create=True)
    [slept] = fake_clock.sleeps
    assert 25 <= slept <= 30


def test_retry_after_beyond_the_budget_gives_up_at_once(
    sandbox: Any, client_factory: Callable[..., PendoClient], fake_clock: FakeClock
) -> None:
    client = client_factory(retry=RetryPolicy(total_budget_seconds=60))
    sandbox.script_faults([{"status": 429, "retry_after": "3600"}])
    [result] = client.write_metadata_batch("visitor", ONE, create=True)
    assert (result.ok, result.kind, result.status) == (False, FailureKind.UNAVAILABLE, 429)
    assert "retry budget" in result.reason
    assert fake_clock.sleeps == []


def test_backoff_is_exponential_with_full_jitter(
    sandbox: Any, client_factory: Callable[..., PendoClient], fake_clock: FakeClock
) -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_seconds=1.0, max_delay_seconds=3.0)
    client = client_factory(retry=policy)
    sandbox.script_faults([{"status": 503}] * 4)
    [result] = client.write_metadata_batch("visitor", ONE, create=True)
    assert result.ok
    expected_rng = random.Random(7)  # the seed client_factory gives every client
    assert fake_clock.sleeps == [expected_rng.uniform(0, cap) for cap in (1.0, 2.0, 3.0, 3.0)]


def test_gives_up_after_max_attempts_and_fails_the_batch(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    client = client_factory(retry=RetryPolicy(max_attempts=3))
    sandbox.script_faults([{"status": 502}] * 3)
    results = client.write_metadata_batch(
        "visitor", [MetadataRecord("v-1", {}), MetadataRecord("v-2", {})], create=True
    )
    assert [(r.ok, r.kind, r.status, r.retried) for r in results] == [
        (False, FailureKind.UNAVAILABLE, 502, True)
    ] * 2
    assert "after 3 attempt(s)" in results[0].reason
    assert sandbox.state()["counters"]["requests"] == 3
    assert "v-1" not in sandbox.state()["metadata"]["visitor"]


def test_total_time_budget_stops_retrying(
    sandbox: Any, client_factory: Callable[..., PendoClient], fake_clock: FakeClock
) -> None:
    policy = RetryPolicy(
        max_attempts=50, base_delay_seconds=10, max_delay_seconds=10, total_budget_seconds=25
    )
    client = client_factory(retry=policy, rng=_MaxJitter())
    sandbox.script_faults([{"status": 500}] * 50)
    [result] = client.write_metadata_batch("visitor", ONE, create=True)
    assert result.kind == FailureKind.UNAVAILABLE
    assert sum(fake_clock.sleeps) <= 25
    assert fake_clock.sleeps == [10, 10]


def test_unreachable_pendo_fails_with_a_clear_error(
    client_factory: Callable[..., PendoClient], fake_clock: FakeClock
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = client_factory(
        base_url=f"http://127.0.0.1:{closed_port}", retry=RetryPolicy(max_attempts=3)
    )
    [result] = client.write_metadata_batch("visitor", ONE, create=True)
    assert result.kind == FailureKind.UNAVAILABLE
    assert result.reason.startswith(
        "Pendo did not accept POST /api/v1/metadata/visitor/custom/value"
    )
    assert "ConnectError" in result.reason
    assert len(fake_clock.sleeps) == 2
    with pytest.raises(PendoUnavailableError, match="after 3 attempt"):
        client.read_schema("visitor")


def test_track_event_retried_after_pacing_429(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    """Real sleep: the sandbox's pacing 429 carries Retry-After: 1, and the retry then lands."""
    import time

    client = client_factory(sleep=time.sleep, clock=time.monotonic)
    first = TrackEvent(event="a", visitor_id="pace-1", timestamp=1_700_000_000_000)
    second = TrackEvent(event="b", visitor_id="pace-1", timestamp=1_700_000_000_001)
    assert client.send_track_event(first).ok
    result = client.send_track_event(second)
    assert (result.ok, result.retried) == (True, True)
    state = sandbox.state()
    assert [e["event"] for e in state["events"]] == ["a", "b"]
    assert state["counters"]["pacing_429"] == 1


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5", now) == 5.0
    assert parse_retry_after("0.5", now) == 0.5
    assert parse_retry_after("Thu, 26 Nov 2026 12:00:09 GMT", now) == 9.0
    assert parse_retry_after("Thu, 26 Nov 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


class _MaxJitter(random.Random):
    """Jitter that always picks the top of the range, to make the budget arithmetic exact."""

    def uniform(self, a: float, b: float) -> float:
        return b
