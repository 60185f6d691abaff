"""Credentials: kept apart, refused loudly, and never leaked."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from pendo_assets.client import (
    MetadataRecord,
    MissingCredentialError,
    PendoAuthError,
    PendoClient,
    RetryPolicy,
    Secret,
    TrackEvent,
)

EVENT = TrackEvent(event="Signed Up", visitor_id="v-1", timestamp=1_700_000_000_000)


def test_wrong_integration_key_stops_with_where_to_check_it(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    client = client_factory(integration_key="wrong-key-123")
    with pytest.raises(PendoAuthError) as info:
        client.write_metadata_batch("visitor", [MetadataRecord("v-1", {})], create=True)
    message = str(info.value)
    assert info.value.status == 403
    assert "invalid or lacks write access" in message
    assert "Pendo > Settings > Subscription Settings > App Details" in message
    assert "has not been regenerated" in message
    assert client.stats_snapshot().retries == 0


def test_401_is_an_auth_error_too(sandbox: Any, client: PendoClient) -> None:
    sandbox.script_faults([{"status": 401, "body": {"message": "unauthorized"}}])
    with pytest.raises(PendoAuthError) as info:
        client.read_schema("visitor")
    assert info.value.status == 401


def test_track_events_use_the_secret_not_the_integration_key(
    sandbox: Any, client: PendoClient
) -> None:
    assert client.send_track_event(EVENT).ok
    [request] = sandbox.state()["requests"]
    assert request["headers"]["x-pendo-integration-key"] == "<track_event_secret>"


def test_integration_key_in_place_of_the_secret_is_refused_with_where_to_find_it(
    sandbox: Any, client_factory: Callable[..., PendoClient], integration_key: str
) -> None:
    client = client_factory(track_event_secret=integration_key)
    with pytest.raises(PendoAuthError) as info:
        client.send_track_event(EVENT)
    assert "Track Event shared secret" in str(info.value)
    assert "Basic settings" in str(info.value)


def test_sending_events_without_the_secret_says_where_to_find_it(
    client_factory: Callable[..., PendoClient],
) -> None:
    client = client_factory(track_event_secret=None)
    with pytest.raises(MissingCredentialError) as info:
        client.send_track_event(EVENT)
    assert "PENDO_TRACK_EVENT_SECRET" in str(info.value)
    assert "Settings > Subscription Settings > Applications" in str(info.value)


def test_blank_credentials_count_as_missing(client_factory: Callable[..., PendoClient]) -> None:
    client = client_factory(integration_key="  ")
    with pytest.raises(MissingCredentialError, match="PENDO_INTEGRATION_KEY"):
        client.write_metadata_batch("visitor", [MetadataRecord("v-1", {})])


def test_no_secret_in_logs_exceptions_or_reprs(
    sandbox: Any,
    client_factory: Callable[..., PendoClient],
    integration_key: str,
    track_event_secret: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at DEBUG
    client = client_factory(retry=RetryPolicy(max_attempts=2))
    sandbox.script_faults([{"status": 503}, {"status": 503}, {"status": 429, "retry_after": "0"}])
    texts = [repr(client), str(client)]
    texts += [
        r.reason or "" for r in client.write_metadata_batch("visitor", [MetadataRecord("v", {})])
    ]
    texts.append(repr(client.send_track_event(EVENT)))
    for wrong in (client_factory(integration_key="bad"), client_factory(track_event_secret="bad")):
        with pytest.raises(PendoAuthError) as info:
            wrong.write_metadata_batch("visitor", [MetadataRecord("v", {})])
            wrong.send_track_event(EVENT)
        texts += [str(info.value), repr(info.value)]
    texts += [record.getMessage() for record in caplog.records]
    assert any("retry" in t for t in texts), "the retries above must have been logged"
    for text in texts:
        assert integration_key not in text
        assert track_event_secret not in text


def test_secret_hides_its_value() -> None:
    secret = Secret("hunter2-made-up")
    assert repr(secret) == str(secret) == f"{secret}" == "Secret('********')"
    assert secret.reveal() == "hunter2-made-up"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
