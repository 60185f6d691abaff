"""Run one sync in a child process so a test can SIGKILL it mid-partition.

Usage: python -m pendo_assets_tests.crash_worker SANDBOX_URL SECRET STATE_URL EVENTS IN_FLIGHT
       python -m pendo_assets_tests.crash_worker --visitors SANDBOX_URL KEY STATE_URL ROWS IN_FLIGHT
"""

from __future__ import annotations

import sys

import pandas as pd

from pendo_assets.client import PendoClient
from pendo_assets.sync.engine import SyncOptions, run_sync
from pendo_assets.sync.record.partition_lease import LeaseSettings
from pendo_assets.sync.record.state_store import StateStore, state_engine
from pendo_assets.sync.results import SyncReport
from pendo_assets.sync.spec import SourceSpec, SyncSpec

NOW_MS = 1_794_000_000_000
# A killed run's lease frees up this soon, so the re-run waits only briefly for it.
LEASE = LeaseSettings(ttl_seconds=2.0, poll_seconds=0.2)

EVENTS_SPEC = SyncSpec(
    name="crash_events",
    object_type="track_events",
    source=SourceSpec(partition_column="at", table="events"),
    mapping={"visitor": "visitorId", "name": "event", "at": "timestamp", "evt": "event_id"},
)


def event_frame(count: int) -> pd.DataFrame:
    """One event per visitor, so pacing never slows the run down."""
    return pd.DataFrame(
        {
            "evt": [f"e-{i}" for i in range(count)],
            "visitor": [f"v-{i}" for i in range(count)],
            "name": ["Exported"] * count,
            "at": [NOW_MS - i for i in range(count)],
        },
        dtype=object,
    )


VISITORS_SPEC = SyncSpec(
    name="crash_visitors",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="at", table="visitors"),
    mapping={"visitor": "visitorId", "plan": "plan"},
)
VISITOR_BATCH = 10  # small batches: many state writes, so the kill lands between them


def visitor_frame(count: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"visitor": [f"v-{i}" for i in range(count)], "plan": [f"p-{i}" for i in range(count)]},
        dtype=object,
    )


def visitor_client(url: str, key: str) -> PendoClient:
    return PendoClient(
        base_url=url, integration_key=key, max_requests_per_second=None, batch_size=VISITOR_BATCH
    )


def sync_visitors(url: str, key: str, state_url: str, count: int, in_flight: int) -> SyncReport:
    with visitor_client(url, key) as client:
        return run_sync(
            VISITORS_SPEC,
            visitor_frame(count),
            client,
            partition_key="2026-11-02",
            options=SyncOptions(max_in_flight=in_flight, run_id="crash", lease=LEASE),
            state=StateStore(state_engine(state_url)),
        )


def sync(url: str, secret: str, state_url: str, count: int, in_flight: int) -> None:
    with PendoClient(base_url=url, track_event_secret=secret, max_requests_per_second=None) as c:
        run_sync(
            EVENTS_SPEC,
            event_frame(count),
            c,
            partition_key="2026-11-02",
            options=SyncOptions(
                max_in_flight=in_flight, now_ms=NOW_MS, run_id="crash", lease=LEASE
            ),
            state=StateStore(state_engine(state_url)),
        )


if __name__ == "__main__":
    if sys.argv[1] == "--visitors":
        url, key, state_url, count, in_flight = sys.argv[2:7]
        sync_visitors(url, key, state_url, int(count), int(in_flight))
    else:
        url, secret, state_url, count, in_flight = sys.argv[1:6]
        sync(url, secret, state_url, int(count), int(in_flight))
