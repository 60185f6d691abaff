"""Synthetic partitions, the sync specs that read them, and the sandbox config they need.

Every frame is built with numpy from a seed, so the parent and each measured child process
build exactly the same rows without passing them around.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pendo_assets.sync.spec import SourceSpec, SyncSpec

INTEGRATION_KEY = "bench-integration-key"
TRACK_SECRET = "bench-track-secret"
VISITOR_FIELDS = {"plan": "string", "seats": "number", "is_trial": "boolean"}
PLANS = np.array(["free", "starter", "team", "business", "enterprise"], dtype=object)
EVENT_NAMES = np.array(["login", "report_viewed", "export", "invite_sent"], dtype=object)
CHANGED_EVERY = 100  # the "1% changed" re-sync edits every 100th row
DAY_MS = 24 * 3600 * 1000


def sandbox_config(latency_ms: float) -> dict[str, Any]:
    """A sandbox that knows the visitor fields; a short request log keeps its memory flat."""
    return {
        "integration_key": INTEGRATION_KEY,
        "track_event_secret": TRACK_SECRET,
        "fields": {"visitor": dict(VISITOR_FIELDS)},
        "latency_ms": latency_ms,
        "request_log_limit": 100,
    }


def _ids(prefix: str, count: int) -> np.ndarray:
    """'v0000042'-style ids as an object array (what a warehouse read gives)."""
    digits = np.char.zfill(np.arange(count).astype("U9"), 7)
    return np.char.add(prefix, digits).astype(object)


def visitor_frame(rows: int, *, seed: int, changed: bool = False) -> pd.DataFrame:
    """One visitor-metadata partition; `changed` bumps `seats` on 1% of the rows."""
    rng = np.random.default_rng(seed)
    seats = rng.integers(1, 500, size=rows)
    if changed:
        seats[::CHANGED_EVERY] += 1
    return pd.DataFrame(
        {
            "id": _ids("v", rows),
            "plan": PLANS[rng.integers(0, len(PLANS), size=rows)],
            "seats": seats,
            "is_trial": rng.random(rows) < 0.2,
        }
    )


def visitor_spec() -> SyncSpec:
    return SyncSpec(
        name="bench_visitors",
        object_type="visitor_metadata",
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "plan": "plan", "seats": "seats", "is_trial": "is_trial"},
    )


def event_frame(events: int, visitors: int, *, seed: int, now_ms: int) -> pd.DataFrame:
    """Track events in timestamp order, as a warehouse query would return them.

    Each visitor has one session of consecutive events 1 to 20 s apart, so a visitor's events
    sit close together in timestamp order: a loop that sends them in that order without
    per-visitor pacing runs into Pendo's one-event-per-second rule.
    """
    rng = np.random.default_rng(seed)
    visitor = np.arange(events) % visitors
    session_start = rng.integers(now_ms - DAY_MS, now_ms - 3_600_000, size=visitors)
    order_in_session = np.arange(events) // visitors
    gaps = rng.integers(1_000, 20_000, size=(events // visitors + 1, visitors)).cumsum(axis=0)
    timestamps = session_start[visitor] + gaps[order_in_session, visitor]
    frame = pd.DataFrame(
        {
            "event_id": _ids("e", events),
            "visitor_id": _ids("v", visitors)[visitor],
            "event": EVENT_NAMES[rng.integers(0, len(EVENT_NAMES), size=events)],
            "ts": timestamps.astype(np.int64),
            "source": "benchmark",
        }
    )
    return frame.sort_values("ts", kind="stable", ignore_index=True)


def track_spec() -> SyncSpec:
    return SyncSpec(
        name="bench_events",
        object_type="track_events",
        source=SourceSpec(partition_column="ts", table="events"),
        mapping={
            "event_id": "event_id",
            "visitor_id": "visitorId",
            "event": "event",
            "ts": "timestamp",
            "source": "source",
        },
    )
