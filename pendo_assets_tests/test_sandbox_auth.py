"""Credentials: the integration key for metadata and schema, the track secret for /data/track."""

from __future__ import annotations

import httpx
import pytest

from pendo_assets.sandbox import SandboxServer

KEY_HEADER = "x-pendo-integration-key"
EVENT = {
    "type": "track",
    "event": "Signed Up",
    "visitorId": "v-auth",
    "timestamp": 1_700_000_000_000,
    "context": {},
}
METADATA_CALLS = [
    ("POST", "/api/v1/metadata/visitor/custom/value", [{"visitorId": "v-1", "values": {}}]),
    ("POST", "/api/v1/metadata/account/bulk", [{"accountId": "a-1", "values": {}}]),
    ("GET", "/api/v1/metadata/schema/visitor", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), [*METADATA_CALLS, ("POST", "/data/track", EVENT)]
)
def test_missing_credential_header_is_401(
    sandbox_http: httpx.Client, method: str, path: str, body: object
) -> None:
    response = sandbox_http.request(method, path, json=body)
    assert response.status_code == 401
    assert KEY_HEADER in response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"), [*METADATA_CALLS, ("POST", "/data/track", EVENT)]
)
def test_wrong_credential_is_403_with_a_message(
    sandbox_http: httpx.Client, method: str, path: str, body: object
) -> None:
    response = sandbox_http.request(method, path, json=body, headers={KEY_HEADER: "nope"})
    assert response.status_code == 403
    assert "not a valid" in response.json()["message"]


def test_integration_key_is_refused_on_track(
    sandbox: SandboxServer, sandbox_http: httpx.Client, integration_key: str
) -> None:
    response = sandbox_http.post("/data/track", json=EVENT, headers={KEY_HEADER: integration_key})
    assert response.status_code == 403
    assert "track event secret" in response.json()["message"]
    assert sandbox.state()["events"] == []


@pytest.mark.parametrize(("method", "path", "body"), METADATA_CALLS)
def test_track_secret_is_refused_on_metadata(
    sandbox: SandboxServer,
    sandbox_http: httpx.Client,
    track_event_secret: str,
    method: str,
    path: str,
    body: object,
) -> None:
    response = sandbox_http.request(
        method, path, json=body, headers={KEY_HEADER: track_event_secret}
    )
    assert response.status_code == 403
    assert "integration key" in response.json()["message"]
    assert sandbox.state()["metadata"] == {"visitor": {}, "account": {}}


def test_refusals_never_echo_the_credential(
    sandbox_http: httpx.Client, integration_key: str
) -> None:
    response = sandbox_http.post("/data/track", json=EVENT, headers={KEY_HEADER: integration_key})
    assert response.status_code == 403
    assert integration_key not in response.text


def test_right_credentials_are_accepted(
    sandbox_http: httpx.Client, integration_key: str, track_event_secret: str
) -> None:
    schema = sandbox_http.get(
        "/api/v1/metadata/schema/visitor", headers={KEY_HEADER: integration_key}
    )
    track = sandbox_http.post("/data/track", json=EVENT, headers={KEY_HEADER: track_event_secret})
    assert (schema.status_code, track.status_code) == (200, 200)
