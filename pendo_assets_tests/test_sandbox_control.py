"""Control routes: the state snapshot, the request log (credentials masked) and reset."""

from __future__ import annotations

import dataclasses
import json

import httpx

from pendo_assets.sandbox import SandboxConfig, SandboxServer

KEY_HEADER = "x-pendo-integration-key"
EVENT = {
    "type": "track",
    "event": "e",
    "visitorId": "v-control",
    "timestamp": 1_700_000_000_000,
    "context": {},
    "properties": {"a": 1},
}


def test_fresh_state_is_empty(sandbox: SandboxServer) -> None:
    assert sandbox.state() == {
        "metadata": {"visitor": {}, "account": {}},
        "events": [],
        "counters": {
            "requests": 0,
            "faults_injected": 0,
            "answers_lost": 0,
            "pacing_429": 0,
            "properties_too_large": 0,
            "responses_by_status": {},
        },
        "requests": [],
    }


def test_control_routes_need_no_credential_and_are_not_counted(
    sandbox: SandboxServer, sandbox_http: httpx.Client
) -> None:
    assert sandbox_http.get("/sandbox/state").status_code == 200
    assert sandbox_http.post("/sandbox/faults", json={"responses": []}).status_code == 200
    assert sandbox_http.delete("/sandbox/faults").status_code == 200
    state = sandbox.state()
    assert (state["counters"]["requests"], state["requests"]) == (0, [])


def test_every_pendo_request_is_counted_by_status(
    sandbox: SandboxServer, sandbox_http: httpx.Client, integration_key: str
) -> None:
    sandbox_http.get("/api/v1/metadata/schema/visitor", headers={KEY_HEADER: integration_key})
    sandbox_http.get("/api/v1/metadata/schema/visitor")
    sandbox_http.get("/api/v1/metadata/schema/visitor", headers={KEY_HEADER: "wrong"})
    sandbox_http.get("/api/v2/nothing-here", headers={KEY_HEADER: integration_key})
    counters = sandbox.state()["counters"]
    assert counters["requests"] == 4
    assert counters["responses_by_status"] == {"200": 1, "401": 1, "403": 1, "404": 1}


def test_wrong_method_on_a_pendo_path_is_405(sandbox_http: httpx.Client) -> None:
    response = sandbox_http.get("/data/track")
    assert response.status_code == 405
    assert "GET" in response.json()["message"]


def test_request_log_records_method_path_query_headers_body_and_status(
    sandbox: SandboxServer, sandbox_http: httpx.Client, integration_key: str
) -> None:
    records = [{"visitorId": "v-1", "values": {"plan": "pro"}}]
    sandbox_http.post(
        "/api/v1/metadata/visitor/custom/value?create=true",
        json=records,
        headers={KEY_HEADER: integration_key, "user-agent": "spec-test/1.0", "x-other": "skip"},
    )
    assert sandbox.state()["requests"] == [
        {
            "method": "POST",
            "path": "/api/v1/metadata/visitor/custom/value",
            "query": {"create": "true"},
            "headers": {
                "content-type": "application/json",
                "user-agent": "spec-test/1.0",
                KEY_HEADER: "<integration_key>",
            },
            "body": records,
            "status": 200,
        }
    ]


def test_request_log_keeps_unparsable_bodies_as_text(
    sandbox: SandboxServer, sandbox_http: httpx.Client, integration_key: str
) -> None:
    sandbox_http.post(
        "/api/v1/metadata/visitor/custom/value", content=b"not json", headers={KEY_HEADER: "x"}
    )
    [entry] = sandbox.state()["requests"]
    assert (entry["body"], entry["status"]) == ("not json", 403)


def test_request_log_masks_credentials_so_they_never_leave_the_sandbox(
    sandbox: SandboxServer,
    sandbox_http: httpx.Client,
    integration_key: str,
    track_event_secret: str,
) -> None:
    schema = "/api/v1/metadata/schema/visitor"
    sandbox_http.get(schema, headers={KEY_HEADER: integration_key})
    sandbox_http.post("/data/track", json=EVENT, headers={KEY_HEADER: track_event_secret})
    sandbox_http.post("/data/track", json=EVENT, headers={KEY_HEADER: integration_key})
    sandbox_http.get(schema, headers={KEY_HEADER: "made-up"})
    # Credentials pasted where they do not belong are masked too.
    sandbox_http.get(schema, params={"key": integration_key}, headers={KEY_HEADER: integration_key})
    sandbox_http.post(
        "/data/track",
        json={**EVENT, "properties": {"token": f"Bearer {track_event_secret}"}},
        headers={KEY_HEADER: track_event_secret},
    )
    state = sandbox.state()
    text = json.dumps(state)
    assert integration_key not in text
    assert track_event_secret not in text
    labels = [entry["headers"][KEY_HEADER] for entry in state["requests"]]
    assert labels == [
        "<integration_key>",
        "<track_event_secret>",
        "<integration_key>",
        "<invalid>",
        "<integration_key>",
        "<track_event_secret>",
    ]
    assert state["requests"][4]["query"] == {"key": "<integration_key>"}


def test_request_log_can_be_left_out(sandbox: SandboxServer, sandbox_http: httpx.Client) -> None:
    sandbox_http.get("/api/v1/metadata/schema/visitor")
    state = sandbox.state(requests=False)
    assert "requests" not in state
    assert state["counters"]["requests"] == 1


def test_request_log_keeps_only_the_most_recent_requests(sandbox_config: SandboxConfig) -> None:
    config = dataclasses.replace(sandbox_config, request_log_limit=2)
    with SandboxServer(config) as server, httpx.Client(base_url=server.url) as http:
        for path in ("/one", "/two", "/three"):
            http.get(path)
        state = server.state()
    assert [entry["path"] for entry in state["requests"]] == ["/two", "/three"]
    assert state["counters"]["requests"] == 3


def test_reset_clears_metadata_events_counters_log_pacing_and_faults(
    sandbox: SandboxServer,
    sandbox_http: httpx.Client,
    integration_key: str,
    track_event_secret: str,
) -> None:
    sandbox_http.post(
        "/api/v1/metadata/visitor/custom/value?create=true",
        json=[{"visitorId": "v-1", "values": {"plan": "pro"}}],
        headers={KEY_HEADER: integration_key},
    )
    sandbox_http.post("/data/track", json=EVENT, headers={KEY_HEADER: track_event_secret})
    sandbox.script_faults([{"status": 503}])
    reset = sandbox_http.post("/sandbox/reset")
    assert reset.status_code == 200
    assert sandbox.state() == {
        "metadata": {"visitor": {}, "account": {}},
        "events": [],
        "counters": {
            "requests": 0,
            "faults_injected": 0,
            "answers_lost": 0,
            "pacing_429": 0,
            "properties_too_large": 0,
            "responses_by_status": {},
        },
        "requests": [],
    }
    # The queued 503 is gone, and the same visitor may send again at once: pacing forgot it.
    again = sandbox_http.post("/data/track", json=EVENT, headers={KEY_HEADER: track_event_secret})
    assert again.status_code == 200
    assert sandbox.state()["events"][0]["sequence"] == 1
