"""Destinations: a stable, printable name for where requests go, which never holds the key."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest

from pendo_assets.client import PendoClient

KEY = "made-up-integration-key-0123456789"
SECRET = "made-up-track-secret-9876543210"


@pytest.fixture
def make() -> Iterator[Callable[..., PendoClient]]:
    """Clients that are never used to send anything: a destination needs no server."""
    clients: list[PendoClient] = []

    def build(**overrides: object) -> PendoClient:
        kwargs: dict[str, object] = {"integration_key": KEY, "track_event_secret": SECRET}
        kwargs.update(overrides)
        client = PendoClient(**kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


def expected_fingerprint(credential: str) -> str:
    return hashlib.sha256(b"pendo-assets/destination/v1\0" + credential.encode()).hexdigest()[:16]


def test_destination_is_base_url_hash_and_fingerprint(make: Callable[..., PendoClient]) -> None:
    client = make(region="eu")
    assert client.destination("integration_key") == (
        f"https://app.eu.pendo.io#{expected_fingerprint(KEY)}"
    )
    assert client.destination("track_event_secret") == (
        f"https://app.eu.pendo.io#{expected_fingerprint(SECRET)}"
    )


def test_same_key_and_url_give_the_same_destination(make: Callable[..., PendoClient]) -> None:
    assert make().destination("integration_key") == make().destination("integration_key")


def test_other_key_gives_another_destination(make: Callable[..., PendoClient]) -> None:
    other = make(integration_key=KEY + "-other")
    assert other.destination("integration_key") != make().destination("integration_key")


def test_other_base_url_gives_another_destination(make: Callable[..., PendoClient]) -> None:
    proxied = make(base_url="https://pendo-proxy.example.com")
    assert proxied.destination("integration_key") != make().destination("integration_key")


def test_other_region_gives_another_destination(make: Callable[..., PendoClient]) -> None:
    us, jp = make(region="us"), make(region="jp")
    assert us.destination("integration_key") != jp.destination("integration_key")


def test_track_destination_follows_the_track_base_url(make: Callable[..., PendoClient]) -> None:
    client = make(track_base_url="https://data.pendo.io")
    assert client.destination("track_event_secret").startswith("https://data.pendo.io#")
    assert client.destination("integration_key").startswith("https://app.pendo.io#")


def test_trailing_newline_on_the_key_gives_the_same_destination(
    make: Callable[..., PendoClient],
) -> None:
    padded = make(integration_key=KEY + "\n", track_event_secret=SECRET + "\r\n")
    for credential in ("integration_key", "track_event_secret"):
        assert padded.destination(credential) == make().destination(credential)


def test_destination_never_contains_the_key(make: Callable[..., PendoClient]) -> None:
    client = make()
    for credential in ("integration_key", "track_event_secret"):
        text = client.destination(credential)
        assert KEY not in text
        assert SECRET not in text


def test_unset_credential_has_fingerprint_none(make: Callable[..., PendoClient]) -> None:
    client = make(track_event_secret=None)
    assert client.destination("track_event_secret") == "https://app.pendo.io#none"


def test_password_in_the_base_url_is_left_out(make: Callable[..., PendoClient]) -> None:
    client = make(base_url="https://user:hunter2@proxy.example.com/pendo")
    assert client.destination("integration_key") == (
        f"https://***@proxy.example.com/pendo#{expected_fingerprint(KEY)}"
    )


def test_absurd_base_url_is_shortened_with_a_hash_of_the_whole(
    make: Callable[..., PendoClient],
) -> None:
    long_url = "https://proxy.example.com/" + "p" * 1000
    first = make(base_url=long_url).destination("integration_key")
    second = make(base_url=long_url + "q").destination("integration_key")
    assert len(first) <= 300
    assert first.startswith(long_url[:200] + "~")
    assert first != second
    assert first.isprintable()


def test_unknown_credential_name_is_refused(make: Callable[..., PendoClient]) -> None:
    with pytest.raises(ValueError, match="'integration_key' or 'track_event_secret'"):
        make().destination("api_key")
