"""Credential hygiene: pasted whitespace is stripped, unusable keys refused, leaks masked."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from pendo_assets.client import (
    FailureKind,
    MetadataRecord,
    MissingCredentialError,
    PendoClient,
    PendoConfigError,
    PendoUnavailableError,
    RetryPolicy,
    Secret,
    TrackEvent,
)
from pendo_assets.sandbox import SandboxServer

EVENT = TrackEvent(event="Signed Up", visitor_id="v-1", timestamp=1_700_000_000_000)
ONE = [MetadataRecord("v-1", {"plan": "pro"})]
PADDINGS = ["\n", "\r\n", " ", "\t", " \n\n"]


def raising(error: Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """An httpx transport that fails every request with `error`, and the requests it saw."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise error

    return httpx.MockTransport(handler), seen


# -- stripping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", PADDINGS)
def test_padded_integration_key_is_accepted_by_the_sandbox(
    sandbox: SandboxServer,
    client_factory: Callable[..., PendoClient],
    integration_key: str,
    padding: str,
) -> None:
    client = client_factory(integration_key=f"{padding}{integration_key}{padding}")
    [result] = client.write_metadata_batch("visitor", ONE, create=True)
    assert result.ok
    [request] = sandbox.state()["requests"]
    assert request["headers"]["x-pendo-integration-key"] == "<integration_key>"


@pytest.mark.parametrize("padding", PADDINGS)
def test_padded_track_event_secret_is_accepted_by_the_sandbox(
    sandbox: SandboxServer,
    client_factory: Callable[..., PendoClient],
    track_event_secret: str,
    padding: str,
) -> None:
    client = client_factory(track_event_secret=track_event_secret + padding)
    assert client.send_track_event(EVENT).ok


def test_padded_secret_object_is_stripped_too(
    sandbox: SandboxServer, client_factory: Callable[..., PendoClient], integration_key: str
) -> None:
    client = client_factory(integration_key=Secret(integration_key + "\r\n"))
    assert client.read_schema("visitor").kind == "visitor"


@pytest.mark.parametrize("blank", ["\n", "\r\n", " \t "])
def test_credential_blank_after_stripping_counts_as_unset(
    client_factory: Callable[..., PendoClient], blank: str
) -> None:
    client = client_factory(integration_key=blank)
    with pytest.raises(MissingCredentialError, match="PENDO_INTEGRATION_KEY"):
        client.write_metadata_batch("visitor", ONE)


# -- refusing what cannot go in a header --------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        (
            "integration_key",
            "keypartone\x01keyparttwo",
            "the integration key (PENDO_INTEGRATION_KEY) contains a control character at "
            "position 11.",
        ),
        (
            "integration_key",
            "keypartone\nkeyparttwo\n",
            "the integration key (PENDO_INTEGRATION_KEY) contains a control character at "
            "position 11.",
        ),
        (
            "track_event_secret",
            " keypartone\tkeyparttwo",
            "the Track Event shared secret (PENDO_TRACK_EVENT_SECRET) contains a control "
            "character at position 12.",
        ),
        (
            "track_event_secret",
            "keypartone\x7f",
            "the Track Event shared secret (PENDO_TRACK_EVENT_SECRET) contains a control "
            "character at position 11.",
        ),
        (
            "integration_key",
            "keypartoneékeyparttwo",
            "the integration key (PENDO_INTEGRATION_KEY) contains a non-ASCII character at "
            "position 11.",
        ),
    ],
)
def test_unusable_credential_is_refused_by_name_and_position_without_its_value(
    client_factory: Callable[..., PendoClient], parameter: str, value: str, expected: str
) -> None:
    with pytest.raises(PendoConfigError) as info:
        client_factory(**{parameter: value})
    message = str(info.value)
    assert message == (
        f"{expected} Set it again without it (surrounding whitespace is removed automatically)."
    )
    for text in (message, repr(info.value)):
        assert "keypart" not in text


def test_unusable_secret_object_is_refused_too(
    client_factory: Callable[..., PendoClient],
) -> None:
    with pytest.raises(PendoConfigError, match=r"PENDO_INTEGRATION_KEY\) contains a control"):
        client_factory(integration_key=Secret("keypartone\x00keyparttwo"))


# -- masking what other libraries put in their messages ---------------------------------------


def test_key_in_a_transport_error_is_masked_in_the_result(
    client_factory: Callable[..., PendoClient], integration_key: str
) -> None:
    transport, seen = raising(httpx.ConnectError(f"boom {integration_key}"))
    client = client_factory(http_transport=transport, retry=RetryPolicy(max_attempts=2))
    [result] = client.write_metadata_batch("visitor", ONE, create=True)
    assert result.kind == FailureKind.UNAVAILABLE
    assert result.reason.endswith("last problem: ConnectError: boom ***")
    assert integration_key not in result.reason
    assert len(seen) == 2


def test_raw_and_stripped_forms_of_a_padded_key_are_masked(
    client_factory: Callable[..., PendoClient], integration_key: str
) -> None:
    padded = integration_key + "\n"
    transport, _ = raising(httpx.ConnectError(f"raw {padded!r} stripped {integration_key}"))
    client = client_factory(
        integration_key=padded, http_transport=transport, retry=RetryPolicy(max_attempts=1)
    )
    with pytest.raises(PendoUnavailableError) as info:
        client.read_schema("visitor")
    assert str(info.value).endswith("last problem: ConnectError: raw '***' stripped ***")
    assert info.value.__context__ is None


def test_secret_in_a_lost_answer_is_masked_in_the_in_doubt_reason(
    client_factory: Callable[..., PendoClient], track_event_secret: str
) -> None:
    transport, seen = raising(httpx.ReadError(f"reset while {track_event_secret} was sent"))
    client = client_factory(http_transport=transport)
    result = client.send_track_event(EVENT)
    assert result.kind == FailureKind.IN_DOUBT
    assert result.reason == (
        "Pendo may have received this event: answer lost (ReadError: reset while *** was sent) "
        "on POST /data/track; not sent again, as a second send could record it twice"
    )
    assert len(seen) == 1


@pytest.mark.parametrize(
    "error_type", [httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL]
)
def test_local_protocol_errors_are_configuration_errors_raised_at_once_and_masked(
    client_factory: Callable[..., PendoClient],
    integration_key: str,
    error_type: type[Exception],
) -> None:
    transport, seen = raising(error_type(f"Illegal header value {integration_key.encode()!r}"))
    client = client_factory(http_transport=transport)
    with pytest.raises(PendoConfigError) as info:
        client.write_metadata_batch("visitor", ONE, create=True)
    assert str(info.value) == (
        "Pendo POST /api/v1/metadata/visitor/custom/value cannot be sent as configured: "
        f"{error_type.__name__}: Illegal header value b'***'. "
        "Check the base URL and the credentials."
    )
    assert (info.value.__context__, info.value.__cause__) == (None, None)
    assert len(seen) == 1
    assert client.stats_snapshot().retries == 0


def test_no_credential_in_any_log_line_of_failing_requests(
    sandbox: SandboxServer,
    client_factory: Callable[..., PendoClient],
    integration_key: str,
    track_event_secret: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="pendo_assets")
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="httpcore")
    secrets = f"{integration_key} {track_event_secret}"
    transport, _ = raising(httpx.ConnectError(f"cannot connect with {secrets}"))
    client = client_factory(
        integration_key=integration_key + "\n",
        track_event_secret=track_event_secret + " ",
        http_transport=transport,
        retry=RetryPolicy(max_attempts=3),
    )
    client.write_metadata_batch("visitor", ONE, create=True)
    client.send_track_event(EVENT)
    real = client_factory(retry=RetryPolicy(max_attempts=3))
    sandbox.script_faults([{"status": 503}, {"drop": True}])
    real.read_schema("visitor")
    lines = [record.getMessage() for record in caplog.records]
    lines += [caplog.text]
    assert sum("cannot connect with *** ***" in line for line in lines[:-1]) == 4
    for line in lines:
        assert integration_key not in line
        assert track_event_secret not in line
