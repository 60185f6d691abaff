"""Injected failures, scripted (exact, in order) and random (fault_rate, seeded); latency."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pendo_assets.sandbox import SandboxConfig, SandboxServer

KEY_HEADER = "x-pendo-integration-key"
WRITE_PATH = "/api/v1/metadata/visitor/custom/value"
FAULT_STATUSES = {429, 500, 502, 503}


@pytest.fixture
def pendo(sandbox_http: httpx.Client, integration_key: str) -> httpx.Client:
    sandbox_http.headers[KEY_HEADER] = integration_key
    return sandbox_http


def write(pendo: httpx.Client, visitor_id: str = "v-1") -> httpx.Response:
    return pendo.post(
        WRITE_PATH,
        params={"create": "true"},
        json=[{"visitorId": visitor_id, "values": {"plan": "pro"}}],
    )


def track(
    pendo: httpx.Client, secret: str, visitor_id: str = "v-track", **changes: Any
) -> httpx.Response:
    body = {
        "type": "track",
        "event": "e",
        "visitorId": visitor_id,
        "timestamp": 1_700_000_000_000,
        "context": {},
        **changes,
    }
    return pendo.post("/data/track", json=body, headers={KEY_HEADER: secret})


def test_scripted_status_answers_the_next_request_with_no_effect(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    sandbox.script_faults([{"status": 503}])
    failed = write(pendo)
    assert (failed.status_code, failed.json()) == (503, {"message": "injected fault"})
    assert "Retry-After" not in failed.headers
    assert sandbox.state()["metadata"]["visitor"] == {}
    assert write(pendo).status_code == 200
    assert sandbox.state()["metadata"]["visitor"]["v-1"]["custom"] == {"plan": "pro"}


def test_scripted_faults_are_used_in_order_and_counted(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    sandbox.script_faults([{"status": 500}, {"status": 429, "retry_after": "2"}])
    statuses = [write(pendo).status_code for _ in range(3)]
    assert statuses == [500, 429, 200]
    counters = sandbox.state()["counters"]
    assert (counters["requests"], counters["faults_injected"]) == (3, 2)
    assert counters["responses_by_status"] == {"200": 1, "429": 1, "500": 1}


@pytest.mark.parametrize("retry_after", ["2", "0", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_scripted_retry_after_is_sent_verbatim(
    sandbox: SandboxServer, pendo: httpx.Client, retry_after: str
) -> None:
    sandbox.script_faults([{"status": 429, "retry_after": retry_after}])
    assert write(pendo).headers["Retry-After"] == retry_after


def test_scripted_body_replaces_the_default(sandbox: SandboxServer, pendo: httpx.Client) -> None:
    sandbox.script_faults([{"status": 200, "body": {"total": 1, "failed": 1}}])
    response = write(pendo)
    assert (response.status_code, response.json()) == (200, {"total": 1, "failed": 1})
    assert sandbox.state()["metadata"]["visitor"] == {}


def test_scripted_fault_comes_before_the_credential_check(
    sandbox: SandboxServer, sandbox_http: httpx.Client
) -> None:
    sandbox.script_faults([{"status": 502}])
    assert sandbox_http.get("/api/v1/metadata/schema/visitor").status_code == 502
    assert sandbox_http.get("/api/v1/metadata/schema/visitor").status_code == 401


def test_path_filter_skips_other_paths_without_consuming_the_fault(
    sandbox: SandboxServer, pendo: httpx.Client, track_event_secret: str
) -> None:
    sandbox.script_faults([{"status": 500, "path": "/data/track"}, {"status": 503}])
    assert write(pendo).status_code == 503  # the /data/track entry is skipped, not consumed
    assert write(pendo).status_code == 200
    assert track(pendo, track_event_secret).status_code == 500
    assert track(pendo, track_event_secret).status_code == 200


def test_dropped_connection_raises_a_transport_error_then_the_sandbox_recovers(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    sandbox.script_faults([{"drop": True}])
    with pytest.raises(httpx.TransportError) as info:
        write(pendo)
    assert isinstance(info.value, httpx.RemoteProtocolError)
    assert write(pendo).status_code == 200
    state = sandbox.state()
    assert state["counters"]["faults_injected"] == 1
    assert [entry["status"] for entry in state["requests"]] == [None, 200]
    assert state["metadata"]["visitor"]["v-1"]["custom"] == {"plan": "pro"}


def test_delete_clears_the_fault_queue(sandbox: SandboxServer, pendo: httpx.Client) -> None:
    sandbox.script_faults([{"status": 503}, {"status": 503}])
    cleared = pendo.delete("/sandbox/faults")
    assert (cleared.status_code, cleared.json()) == (200, {"pending": 0})
    assert write(pendo).status_code == 200


def test_scripting_answers_how_many_faults_are_pending(pendo: httpx.Client) -> None:
    first = pendo.post("/sandbox/faults", json={"responses": [{"status": 500}]})
    second = pendo.post("/sandbox/faults", json={"responses": [{"drop": True}]})
    assert (first.json(), second.json()) == ({"pending": 1}, {"pending": 2})


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([{"status": 503}], "responses"),
        ({"responses": [{"status": 99}]}, "responses[0].status"),
        ({"responses": [{"status": 503}, {"status": "503"}]}, "responses[1].status"),
        ({"responses": [{"status": 503, "retry_after": 1.5}]}, "retry_after"),
        ({"responses": [{"status": 503, "path": "data/track"}]}, "path"),
        ({"responses": [{"status": 503, "delay": 3}]}, "delay"),
        ({"responses": ["boom"]}, "responses[0]"),
    ],
)
def test_invalid_scripts_are_400_and_queue_nothing(
    pendo: httpx.Client, payload: Any, expected: str
) -> None:
    response = pendo.post("/sandbox/faults", json=payload)
    assert response.status_code == 400
    assert expected in response.json()["message"]
    assert write(pendo).status_code == 200


@pytest.fixture
def config_with(sandbox_config: SandboxConfig) -> Any:
    def make(**changes: Any) -> SandboxConfig:
        return dataclasses.replace(sandbox_config, **changes)

    return make


@pytest.fixture
def always_failing(config_with: Any) -> Iterator[SandboxServer]:
    with SandboxServer(config_with(fault_rate=1.0, seed=7, retry_after_seconds=4)) as server:
        yield server


def test_fault_rate_one_fails_every_request_with_429_or_5xx_and_stores_nothing(
    always_failing: SandboxServer, integration_key: str, track_event_secret: str
) -> None:
    with httpx.Client(base_url=always_failing.url, headers={KEY_HEADER: integration_key}) as pendo:
        responses = [write(pendo, f"v-{i}") for i in range(20)]
        responses += [track(pendo, track_event_secret, f"t-{i}") for i in range(20)]
    assert {r.status_code for r in responses} <= FAULT_STATUSES
    retry_afters = {r.headers.get("Retry-After") for r in responses if r.status_code == 429}
    assert retry_afters == {"4", None}  # about half of the 429s carry one
    assert all("Retry-After" not in r.headers for r in responses if r.status_code != 429)
    state = always_failing.state()
    assert state["metadata"] == {"visitor": {}, "account": {}}
    assert state["events"] == []
    assert (state["counters"]["requests"], state["counters"]["faults_injected"]) == (40, 40)


def test_random_faults_replay_identically_with_the_same_seed(
    config_with: Any, integration_key: str
) -> None:
    with (
        SandboxServer(config_with(fault_rate=0.5, seed=42)) as server,
        httpx.Client(base_url=server.url, headers={KEY_HEADER: integration_key}) as pendo,
    ):
        first = [write(pendo, f"v-{i}").status_code for i in range(30)]
        server.reset()  # re-seeds the fault RNG
        second = [write(pendo, f"v-{i}").status_code for i in range(30)]
    assert first == second
    assert 200 in first
    assert set(first) - {200}
    assert set(first) <= FAULT_STATUSES | {200}


def test_fault_rate_zero_never_injects(sandbox: SandboxServer, pendo: httpx.Client) -> None:
    assert {write(pendo, f"v-{i}").status_code for i in range(30)} == {200}
    assert sandbox.state()["counters"]["faults_injected"] == 0


def test_latency_delays_requests_and_a_client_timeout_does_not_undo_them(
    config_with: Any, integration_key: str
) -> None:
    # Behaviour, not timing: a client that waits less than the latency times out, yet the
    # sandbox still applies its write; a patient client's later write lands after it.
    with SandboxServer(config_with(latency_ms=400)) as server:
        with httpx.Client(base_url=server.url, headers={KEY_HEADER: integration_key}) as pendo:
            with pytest.raises(httpx.ReadTimeout):
                pendo.post(
                    WRITE_PATH,
                    params={"create": "true"},
                    json=[{"visitorId": "v-impatient", "values": {"plan": "free"}}],
                    timeout=0.05,
                )
            assert write(pendo, "v-patient").status_code == 200
        state = server.state()
    assert list(state["metadata"]["visitor"]) == ["v-impatient", "v-patient"]
    assert state["counters"]["requests"] == 2
    assert [entry["status"] for entry in state["requests"]] == [200, 200]
