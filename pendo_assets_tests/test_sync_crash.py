"""A sync killed with SIGKILL mid-partition loses nothing when re-run, and duplicates no event
beyond those in flight at the kill; metadata state stays true (only what Pendo accepted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pendo_assets.sandbox import SandboxConfig, SandboxServer
from pendo_assets.sync.deliver.acknowledgements import ACK_BATCH
from pendo_assets.sync.engine import destination_of
from pendo_assets.sync.record.state_store import StateStore, state_engine
from pendo_assets.sync.record.state_writer import QUEUED_BATCHES
from pendo_assets_tests.crash_worker import (
    VISITOR_BATCH,
    VISITORS_SPEC,
    sync,
    sync_visitors,
    visitor_client,
)

EVENTS = 600
IN_FLIGHT = 4
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def slow_sandbox(sandbox_config: SandboxConfig) -> SandboxServer:
    """A sandbox of its own with latency, so the kill lands while requests are in flight."""
    config = SandboxConfig.from_dict(
        {
            "integration_key": sandbox_config.integration_key,
            "track_event_secret": sandbox_config.track_event_secret,
            "fields": {"visitor": {"plan": "string"}},
            "latency_ms": 30,
        }
    )
    with SandboxServer(config) as server:
        yield server


def test_killed_event_sync_rerun_delivers_every_event_with_bounded_duplicates(
    slow_sandbox: SandboxServer, track_event_secret: str, tmp_path: Path
) -> None:
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pendo_assets_tests.crash_worker",
            slow_sandbox.url,
            track_event_secret,
            state_url,
            str(EVENTS),
            str(IN_FLIGHT),
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 120
        while len(slow_sandbox.state(requests=False)["events"]) < EVENTS // 3:
            assert child.poll() is None, "the sync finished before it could be killed"
            assert time.monotonic() < deadline, "the sync made no progress"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    delivered_at_kill = len(slow_sandbox.state(requests=False)["events"])
    assert child.returncode == -signal.SIGKILL
    assert delivered_at_kill < EVENTS

    # The killed run still holds the partition's lease: the re-run waits for it to expire.
    rerun_started = time.monotonic()
    sync(slow_sandbox.url, track_event_secret, state_url, EVENTS, IN_FLIGHT)
    assert time.monotonic() - rerun_started >= 0.5  # it did wait for the abandoned lease

    counts = Counter(e["visitorId"] for e in slow_sandbox.state(requests=False)["events"])
    assert set(counts) == {f"v-{i}" for i in range(EVENTS)}  # nothing lost
    duplicated = sum(n - 1 for n in counts.values())
    print(f"delivered at kill: {delivered_at_kill}, duplicated on re-run: {duplicated}")
    # Only events Pendo accepted whose state write the kill prevented can go out twice: at most
    # one per worker in flight, plus the acknowledgements not yet written (one batch).
    assert duplicated <= IN_FLIGHT + ACK_BATCH


def test_killed_metadata_sync_leaves_true_state_and_the_rerun_sends_exactly_what_it_lacks(
    slow_sandbox: SandboxServer, integration_key: str, tmp_path: Path
) -> None:
    rows = 3000
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pendo_assets_tests.crash_worker",
            "--visitors",
            slow_sandbox.url,
            integration_key,
            state_url,
            str(rows),
            str(IN_FLIGHT),
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 120
        while len(slow_sandbox.state(requests=False)["metadata"]["visitor"]) < rows // 3:
            assert child.poll() is None, "the sync finished before it could be killed"
            assert time.monotonic() < deadline, "the sync made no progress"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    in_pendo = set(slow_sandbox.state(requests=False)["metadata"]["visitor"])
    with visitor_client(slow_sandbox.url, integration_key) as client:
        scope = StateStore(state_engine(state_url)).scope(
            destination_of(VISITORS_SPEC, client), VISITORS_SPEC.name
        )
        recorded = set(scope.known([f"v-{i}" for i in range(rows)]))
    assert len(in_pendo) < rows
    assert recorded <= in_pendo  # the state never claims what Pendo did not accept
    # Unrecorded acceptances are bounded: batches in flight, queued for the writer, and the one
    # transaction being written (which took at most what was queued).
    bound = (IN_FLIGHT + 2 * QUEUED_BATCHES + 1) * VISITOR_BATCH
    assert len(in_pendo - recorded) <= bound

    report = sync_visitors(slow_sandbox.url, integration_key, state_url, rows, IN_FLIGHT)

    assert report.sent == rows - len(recorded)  # exactly what the state lacked
    assert report.skipped_unchanged == len(recorded)
    stored = slow_sandbox.state(requests=False)["metadata"]["visitor"]
    assert {vid: v["custom"]["plan"] for vid, v in stored.items()} == {
        f"v-{i}": f"p-{i}" for i in range(rows)
    }
