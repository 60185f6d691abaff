"""Lost answers: the sandbox applies a request, then drops the connection or answers 5xx."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from pendo_assets.sandbox import SandboxConfig, SandboxServer

KEY_HEADER = "x-pendo-integration-key"
WRITE_PATH = "/api/v1/metadata/visitor/custom/value"


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


def track(pendo: httpx.Client, secret: str, visitor_id: str = "v-track") -> httpx.Response:
    body = {
        "type": "track",
        "event": "e",
        "visitorId": visitor_id,
        "timestamp": 1_700_000_000_000,
        "context": {},
    }
    return pendo.post("/data/track", json=body, headers={KEY_HEADER: secret})


def test_dropped_answer_after_effect_keeps_the_write(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    sandbox.script_faults([{"drop": True, "after_effect": True}])
    with pytest.raises(httpx.RemoteProtocolError):
        write(pendo)
    state = sandbox.state()
    assert state["metadata"]["visitor"]["v-1"]["custom"] == {"plan": "pro"}
    assert [entry["status"] for entry in state["requests"]] == [None]


def test_dropped_answer_after_effect_keeps_the_event(
    sandbox: SandboxServer, pendo: httpx.Client, track_event_secret: str
) -> None:
    sandbox.script_faults([{"drop": True, "after_effect": True}])
    with pytest.raises(httpx.RemoteProtocolError):
        track(pendo, track_event_secret)
    assert [event["visitorId"] for event in sandbox.state()["events"]] == ["v-track"]


@pytest.mark.parametrize("status", [502, 504])
def test_error_status_after_effect_keeps_the_event(
    sandbox: SandboxServer, pendo: httpx.Client, track_event_secret: str, status: int
) -> None:
    sandbox.script_faults([{"status": status, "after_effect": True}])
    response = track(pendo, track_event_secret)
    assert (response.status_code, response.json()) == (status, {"message": "injected fault"})
    assert [event["visitorId"] for event in sandbox.state()["events"]] == ["v-track"]


def test_lost_answers_are_counted_as_faults_and_as_answers_lost(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    sandbox.script_faults([{"status": 503}, {"status": 502, "after_effect": True}])
    statuses = [write(pendo, "v-before").status_code, write(pendo, "v-after").status_code]
    state = sandbox.state()
    assert statuses == [503, 502]
    assert list(state["metadata"]["visitor"]) == ["v-after"]
    assert (state["counters"]["faults_injected"], state["counters"]["answers_lost"]) == (2, 1)
    assert state["counters"]["responses_by_status"] == {"502": 1, "503": 1}


def test_after_effect_false_is_an_ordinary_fault(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    sandbox.script_faults([{"status": 502, "after_effect": False}])
    assert write(pendo).status_code == 502
    assert sandbox.state()["metadata"]["visitor"] == {}


def test_lost_answer_respects_the_path_filter(
    sandbox: SandboxServer, pendo: httpx.Client, track_event_secret: str
) -> None:
    sandbox.script_faults([{"status": 504, "after_effect": True, "path": "/data/track"}])
    assert write(pendo).status_code == 200
    assert track(pendo, track_event_secret).status_code == 504
    assert len(sandbox.state()["events"]) == 1


def test_refused_request_stays_refused_under_a_lost_answer(
    sandbox: SandboxServer, sandbox_http: httpx.Client
) -> None:
    """The request is handled as Pendo would: without a credential nothing is applied."""
    sandbox.script_faults([{"status": 502, "after_effect": True}])
    assert write(sandbox_http).status_code == 502
    assert sandbox.state()["metadata"]["visitor"] == {}


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_after_effect_must_be_a_boolean(pendo: httpx.Client, value: object) -> None:
    response = pendo.post(
        "/sandbox/faults", json={"responses": [{"status": 502, "after_effect": value}]}
    )
    assert response.status_code == 400
    assert response.json() == {"message": "responses[0].after_effect must be true or false"}


def test_lost_answer_rate_one_applies_every_request_and_loses_every_answer(
    sandbox_config: SandboxConfig, integration_key: str, track_event_secret: str
) -> None:
    config = dataclasses.replace(sandbox_config, lost_answer_rate=1.0, seed=11)
    statuses: list[int | None] = []
    with (
        SandboxServer(config) as server,
        httpx.Client(base_url=server.url, headers={KEY_HEADER: integration_key}) as pendo,
    ):
        for i in range(10):
            try:
                statuses.append(track(pendo, track_event_secret, f"t-{i}").status_code)
            except httpx.RemoteProtocolError:
                statuses.append(None)
        state = server.state(requests=False)
    assert set(statuses) == {None, 502, 504}
    assert len(state["events"]) == 10
    assert (state["counters"]["faults_injected"], state["counters"]["answers_lost"]) == (10, 10)
