"""Whole-sync failures: refused credentials and an unreachable Pendo stop the sync with a clear
message, after accounting for every row (sent, failed, skipped; unsent rows failed "not sent")."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pytest

from pendo_assets.client import PendoClient, RetryPolicy
from pendo_assets.client.errors import INTEGRATION_KEY_HELP, TRACK_SECRET_HELP
from pendo_assets.sync.deliver.outcome import SyncAborted
from pendo_assets.sync.engine import SyncOptions, run_sync
from pendo_assets.sync.prepare.metadata_rows import SUPERSEDED
from pendo_assets.sync.results import RowFailure
from pendo_assets.sync.spec import SourceSpec, SyncSpec
from pendo_assets_tests.sync_specs import VISITORS

PARTITION = "2026-11-02"
T = 1_793_613_600_000  # 2026-11-02T10:00:00Z in epoch milliseconds
CUSTOM = "/api/v1/metadata/visitor/custom/value"
VISITORS_WITH_AGENT = SyncSpec(
    name="visitors",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={"id": "visitorId", "plan": "plan", "email": "agent.email"},
)
EVENTS = SyncSpec(
    name="events",
    object_type="track_events",
    source=SourceSpec(partition_column="occurred_at", table="events"),
    mapping={"visitor_id": "visitorId", "event_name": "event", "occurred_at": "timestamp"},
)


def aborted_sync(
    spec: SyncSpec, rows: list[dict[str, Any]], client: PendoClient, max_in_flight: int = 4
) -> SyncAborted:
    with pytest.raises(SyncAborted) as raised:
        run_sync(
            spec,
            pd.DataFrame(rows, dtype=object),
            client,
            partition_key=PARTITION,
            options=SyncOptions(max_in_flight=max_in_flight, now_ms=T),
        )
    report = raised.value.report
    assert report.rows == report.sent + report.failed + report.skipped
    assert report.failed == len(report.failures)
    return raised.value


@pytest.fixture
def closed_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


class DownAfter(httpx.HTTPTransport):
    """Real HTTP for the first `answered` requests, then connection refused for good."""

    def __init__(self, answered: int) -> None:
        super().__init__()
        self._left = answered
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self._left -= 1
            down = self._left < 0
        if down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return super().handle_request(request)


# -- refused credentials -----------------------------------------------------------------------


def test_a_wrong_integration_key_stops_the_sync_and_fails_every_sendable_row(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    client = client_factory(integration_key="not-the-key", batch_size=2)
    rows = [
        {"id": "v-1", "plan": "free"},  # superseded by the last row
        {"id": None, "plan": "pro"},  # invalid
        {"id": "v-2", "plan": "pro"},
        {"id": "v-3", "plan": "pro"},
        {"id": "v-4", "plan": "pro"},
        {"id": "v-1", "plan": "pro"},
    ]
    aborted = aborted_sync(VISITORS, rows, client)
    auth = (
        "Authentication failed: Pendo refused the integration key (HTTP 403 on POST "
        f"{CUSTOM}); it is invalid or lacks write access. {INTEGRATION_KEY_HELP}"
    )
    assert aborted.retryable is False
    assert str(aborted) == (
        f"sync 'visitors' partition {PARTITION} stopped: {auth} "
        "(0 sent, 5 failed, 1 skipped of 6 rows)"
    )
    report = aborted.report
    assert report.failures == [
        RowFailure(1, None, "visitorId identifier is missing or empty", field="visitorId"),
        RowFailure(2, "v-2", f"not sent: {auth}"),
        RowFailure(3, "v-3", f"not sent: {auth}"),
        RowFailure(4, "v-4", f"not sent: {auth}"),
        RowFailure(5, "v-1", f"not sent: {auth}"),
    ]
    assert (report.sent, report.skipped, dict(report.skipped_reasons)) == (0, 1, {SUPERSEDED: 1})
    state = sandbox.state()
    assert state["metadata"]["visitor"] == {}
    assert {r["status"] for r in state["requests"]} == {403}


def test_a_wrong_track_event_secret_stops_the_sync(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    client = client_factory(track_event_secret="not-the-secret")
    rows = [{"visitor_id": f"v-{i}", "event_name": "e", "occurred_at": T} for i in range(3)]
    aborted = aborted_sync(EVENTS, rows, client, max_in_flight=1)
    auth = (
        "Authentication failed: Pendo refused the Track Event shared secret (HTTP 403 on POST "
        f"/data/track); it is invalid or lacks write access. {TRACK_SECRET_HELP}"
    )
    assert aborted.retryable is False
    assert str(aborted) == (
        f"sync 'events' partition {PARTITION} stopped: {auth} "
        "(0 sent, 3 failed, 0 skipped of 3 rows)"
    )
    assert aborted.report.failures == [
        RowFailure(i, f"v-{i}", f"not sent: {auth}") for i in range(3)
    ]
    assert sandbox.state()["events"] == []


def test_a_row_whose_agent_request_never_went_is_not_counted_as_sent(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    client = client_factory(batch_size=2)
    sandbox.script_faults([{"status": 403, "path": "/api/v1/metadata/visitor/agent/value"}])
    rows = [{"id": f"v-{i}", "plan": "pro", "email": f"{i}@example.com"} for i in range(4)]
    aborted = aborted_sync(VISITORS_WITH_AGENT, rows, client, max_in_flight=1)
    report = aborted.report
    # the first batch's custom values went, its agent request was refused: not sent
    assert (report.sent, report.failed) == (0, 4)
    assert [(f.record_id, f.reason.split(":")[0]) for f in report.failures] == [
        (f"v-{i}", "not sent") for i in range(4)
    ]
    assert [r["status"] for r in sandbox.state()["requests"]] == [200, 403]


# -- Pendo unreachable -------------------------------------------------------------------------


def test_unreachable_pendo_stops_after_three_requests_in_a_row_exhausted_their_retries(
    client_factory: Callable[..., PendoClient], closed_url: str
) -> None:
    client = client_factory(base_url=closed_url, retry=RetryPolicy(max_attempts=2), batch_size=1)
    rows = [{"id": f"v-{i}", "plan": "pro"} for i in range(5)]
    aborted = aborted_sync(VISITORS, rows, client, max_in_flight=1)
    assert aborted.retryable is True
    message = str(aborted)
    assert message.startswith(
        f"sync 'visitors' partition {PARTITION} stopped: Pendo unreachable: 3 requests in a row "
        f"exhausted their retries; last: Pendo did not accept POST {CUSTOM} after 2 attempt(s)"
    )
    assert message.endswith("(0 sent, 5 failed, 0 skipped of 5 rows)")
    failures = aborted.report.failures
    tried = f"Pendo did not accept POST {CUSTOM} after 2 attempt(s)"
    assert [(f.record_id, f.reason.startswith(tried)) for f in failures[:3]] == [
        ("v-0", True),
        ("v-1", True),
        ("v-2", True),
    ]
    assert all("ConnectError" in f.reason for f in failures[:3])
    unreachable = message.split("stopped: ")[1].split(" (0 sent")[0]
    assert [(f.record_id, f.reason) for f in failures[3:]] == [
        ("v-3", f"not sent: {unreachable}"),
        ("v-4", f"not sent: {unreachable}"),
    ]
    assert client.stats_snapshot().requests == 6  # three requests of two attempts, then stop


def test_a_sync_too_small_for_three_requests_still_stops_when_pendo_is_unreachable(
    client_factory: Callable[..., PendoClient], closed_url: str
) -> None:
    client = client_factory(base_url=closed_url, retry=RetryPolicy(max_attempts=2))
    rows = [{"id": "v-1", "plan": "pro"}, {"id": "v-2", "plan": "pro"}]
    aborted = aborted_sync(VISITORS, rows, client)
    assert aborted.retryable is True
    assert (
        f"stopped: Pendo unreachable: all 1 request(s) exhausted their retries; last: Pendo did "
        f"not accept POST {CUSTOM} after 2 attempt(s)"
    ) in str(aborted)
    assert [f.record_id for f in aborted.report.failures] == ["v-1", "v-2"]


def test_unreachable_pendo_stops_a_track_event_sync(
    client_factory: Callable[..., PendoClient], closed_url: str
) -> None:
    client = client_factory(base_url=closed_url, retry=RetryPolicy(max_attempts=2))
    rows = [{"visitor_id": f"v-{i}", "event_name": "e", "occurred_at": T} for i in range(5)]
    aborted = aborted_sync(EVENTS, rows, client, max_in_flight=1)
    assert aborted.retryable is True
    assert "stopped: Pendo unreachable: 3 requests in a row exhausted their retries" in str(aborted)
    assert str(aborted).endswith("(0 sent, 5 failed, 0 skipped of 5 rows)")


def test_rows_sent_before_pendo_went_away_are_accounted_as_sent(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    client = client_factory(
        http_transport=DownAfter(answered=2), retry=RetryPolicy(max_attempts=2), batch_size=1
    )
    rows = [{"id": f"v-{i}", "plan": "pro"} for i in range(6)]
    aborted = aborted_sync(VISITORS, rows, client, max_in_flight=1)
    assert aborted.retryable is True
    assert str(aborted).endswith("(2 sent, 4 failed, 0 skipped of 6 rows)")
    failures = aborted.report.failures
    assert [f.record_id for f in failures] == ["v-2", "v-3", "v-4", "v-5"]
    assert [f.reason.startswith("not sent: ") for f in failures] == [False, False, False, True]
    assert sorted(sandbox.state()["metadata"]["visitor"]) == ["v-0", "v-1"]
