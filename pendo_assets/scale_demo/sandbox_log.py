"""What the sandbox received: arrival times of every Pendo API request and the records accepted.

The sandbox stamps each request with `time.monotonic()` as it arrives (served with
`?timings=true`), one clock for every sender, so the busiest second is measured where Pendo
would measure it, whichever machine sent the request.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx

from .workload import EventKey, MetadataKey

METADATA_PATH = "/api/v1/metadata/visitor/custom/value"
CREDENTIAL_HEADER = "x-pendo-integration-key"


@dataclass(frozen=True)
class SandboxLog:
    """Arrivals (all requests, and per credential: one per destination) and accepted records."""

    arrivals: list[float]
    arrivals_by_credential: dict[str, list[float]]
    events: list[EventKey]
    metadata: list[MetadataKey]
    counters: dict[str, Any]


def read_counters(url: str) -> dict[str, Any]:
    """The sandbox's counters and how many events it holds; cheap enough to poll."""
    with httpx.Client(base_url=url, timeout=60) as http:
        state = http.get("/sandbox/state", params={"requests": "false"}).raise_for_status()
    body = state.json()
    return {**body["counters"], "events_stored": len(body["events"])}


def read_sandbox(url: str) -> SandboxLog:
    """Everything the sandbox logged; fails if its request log overflowed (it would then
    hide requests from the figures)."""
    with httpx.Client(base_url=url, timeout=300) as http:
        response = http.get("/sandbox/state", params={"requests": "true", "timings": "true"})
    state = response.raise_for_status().json()
    requests: list[dict[str, Any]] = state["requests"]
    counters: dict[str, Any] = state["counters"]
    if len(requests) != counters["requests"]:
        raise RuntimeError(
            f"the sandbox logged {len(requests)} of {counters['requests']} requests: raise its "
            "request_log_limit"
        )
    by_credential: dict[str, list[float]] = defaultdict(list)
    metadata: list[MetadataKey] = []
    for entry in requests:
        by_credential[entry["headers"].get(CREDENTIAL_HEADER, "<none>")].append(
            entry["received_at"]
        )
        if entry["path"] == METADATA_PATH and entry["status"] == 200:
            metadata += [(r["visitorId"], r["values"]["synced_day"]) for r in entry["body"]]
    events: list[EventKey] = [(e["visitorId"], e["event"], e["timestamp"]) for e in state["events"]]
    return SandboxLog(
        arrivals=sorted(entry["received_at"] for entry in requests),
        arrivals_by_credential={k: sorted(v) for k, v in by_credential.items()},
        events=events,
        metadata=metadata,
        counters=counters,
    )
