"""Shared fixtures: one local Pendo sandbox per test session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pendo_assets.sandbox import SandboxConfig, SandboxServer

# The client tests' fixtures (fake clock, clients aimed at the sandbox) live in their own module.
pytest_plugins = ["pendo_assets_tests.client_fixtures"]


@pytest.fixture(scope="session")
def integration_key() -> str:
    """A made-up integration key (metadata endpoints)."""
    return "test-integration-key-7f3a91"


@pytest.fixture(scope="session")
def track_event_secret() -> str:
    """A made-up Track Event shared secret (``/data/track``)."""
    return "test-track-secret-c2e4b8"


@pytest.fixture(scope="session")
def sandbox_config(integration_key: str, track_event_secret: str) -> SandboxConfig:
    """The demo's fields, no latency, no random faults."""
    return SandboxConfig(
        integration_key=integration_key,
        track_event_secret=track_event_secret,
        fields={
            "visitor": {
                "plan": "string",
                "seats": "number",
                "is_trial": "boolean",
                "signup_date": "time",
            },
            "account": {"name": "string", "tier": "string", "arr": "number"},
        },
        agent_fields={"visitor": {"email": "string"}},
        latency_ms=0,
        fault_rate=0.0,
        max_batch=1000,
    )


@pytest.fixture(scope="session")
def sandbox_server(sandbox_config: SandboxConfig) -> Iterator[SandboxServer]:
    """One sandbox for the whole session; use ``sandbox`` to get it freshly reset."""
    with SandboxServer(sandbox_config) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The session's sandbox, reset: no metadata, events, counters, log, pacing or faults."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def sandbox_http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """A plain HTTP client pointed at the reset sandbox (no credentials set)."""
    # verify=False: plain HTTP on loopback, and loading CA certificates costs ~40 ms a client.
    with httpx.Client(base_url=sandbox.url, timeout=10, verify=False) as client:
        yield client
