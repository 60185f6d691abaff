"""Fixtures for the client tests: a fake clock and clients pointed at the sandbox.

Kept beside conftest.py (which imports them) so the sandbox fixtures stay in one place.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pendo_assets.client import PendoClient


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client_factory(
    sandbox: Any, integration_key: str, track_event_secret: str, fake_clock: FakeClock
) -> Iterator[Callable[..., PendoClient]]:
    """Builds clients aimed at the sandbox; retries wait on the fake clock, not the wall."""
    clients: list[PendoClient] = []

    def make(**overrides: Any) -> PendoClient:
        kwargs: dict[str, Any] = {
            "region": "us",
            "base_url": sandbox.url,
            "integration_key": integration_key,
            "track_event_secret": track_event_secret,
            "sleep": fake_clock.sleep,
            "clock": fake_clock,
            "rng": random.Random(7),
        }
        kwargs.update(overrides)
        client = PendoClient(**kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(client_factory: Callable[..., PendoClient]) -> PendoClient:
    return client_factory()
