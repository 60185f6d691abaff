"""The measured runs, each executed in a fresh child process (see `bench_sync.py --child`).

A fresh process per run makes `ru_maxrss` the peak of that run alone, and keeps one run's
garbage, caches and threads from colouring the next. Each job returns a JSON-ready dict.
"""

from __future__ import annotations

import resource
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from workloads import (
    INTEGRATION_KEY,
    TRACK_SECRET,
    event_frame,
    track_spec,
    visitor_frame,
    visitor_spec,
)

from pendo_assets.client import PendoClient
from pendo_assets.sync.engine import SyncOptions, run_sync
from pendo_assets.sync.record.state_store import StateStore, state_engine
from pendo_assets.sync.source.warehouse import DEFAULT_CHUNK_ROWS

MIB = 1024 * 1024
METADATA_PATH = "/api/v1/metadata/visitor/custom/value"
NAIVE_BATCH = 1000
PARTITION = "2026-11-01"


def _rss_mib() -> float:
    """Current resident set size, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_seconds() -> float:
    """This process's CPU time, all threads: what the client itself costs, latency aside."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class StampingTransport(httpx.HTTPTransport):
    """Notes when each request leaves, to find the busiest second afterwards."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent_at: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent_at.append(time.monotonic())
        return super().handle_request(request)


def busiest_second(stamps: list[float]) -> int:
    """The most requests that left within any one-second window."""
    ordered = sorted(stamps)
    best, start = 0, 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- ours ------------------------------------------------------------------------------------


def ours_metadata(job: dict[str, Any]) -> dict[str, Any]:
    """`run_sync` as the Dagster asset calls it: state store, preflight, default concurrency."""
    frame = visitor_frame(job["rows"], seed=job["seed"], changed=job["changed"])
    state = StateStore(state_engine(job["state_url"]))
    client = PendoClient(
        base_url=job["url"], integration_key=INTEGRATION_KEY, max_requests_per_second=None
    )
    options = SyncOptions(run_id=job["run_id"], preflight=True)
    rss_before = _rss_mib()
    with client:
        cpu, started = _cpu_seconds(), time.perf_counter()
        chunks = (  # as the warehouse stream hands them over
            frame.iloc[first : first + DEFAULT_CHUNK_ROWS]
            for first in range(0, len(frame), DEFAULT_CHUNK_ROWS)
        )
        report = run_sync(
            visitor_spec(), chunks, client, partition_key=PARTITION, options=options, state=state
        )
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": report.rows,
        "sent": report.sent,
        "skipped": report.skipped,
        "failed": report.failed,
        "requests": report.requests,
        "frame_mib": frame.memory_usage(deep=True).sum() / MIB,
        "rss_before_mib": rss_before,
        "peak_rss_mib": _peak_rss_mib(),
    }


def ours_track(job: dict[str, Any]) -> dict[str, Any]:
    """Track events through `run_sync` with the client capped at `cap` requests a second."""
    frame = event_frame(job["events"], job["visitors"], seed=job["seed"], now_ms=job["now_ms"])
    state = StateStore(state_engine(job["state_url"]))
    transport = StampingTransport(
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32)
    )
    client = PendoClient(
        base_url=job["url"],
        track_event_secret=TRACK_SECRET,
        max_requests_per_second=job["cap"],
        http_transport=transport,
    )
    options = SyncOptions(run_id=job["run_id"], now_ms=job["now_ms"])
    with client:
        cpu, started = _cpu_seconds(), time.perf_counter()
        report = run_sync(
            track_spec(), frame, client, partition_key=PARTITION, options=options, state=state
        )
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "events": report.rows,
        "sent": report.sent,
        "failed": report.failed,
        "requests": report.requests,
        "busiest_second": busiest_second(transport.sent_at),
        "peak_rss_mib": _peak_rss_mib(),
    }


# -- naive: the loops a user would write -----------------------------------------------------


def _naive_metadata_loop(http: httpx.Client, frame: pd.DataFrame, rows: int) -> int:
    """Batches of 1000 posted one after another; no state, so every run sends everything."""
    requests = 0
    for start in range(0, rows, NAIVE_BATCH):
        batch = frame.iloc[start : min(start + NAIVE_BATCH, rows)].to_dict("records")
        body = [
            {
                "visitorId": row["id"],
                "values": {"plan": row["plan"], "seats": row["seats"], "is_trial": row["is_trial"]},
            }
            for row in batch
        ]
        response = http.post(METADATA_PATH, params={"create": "true"}, json=body)
        response.raise_for_status()
        requests += 1
    return requests


def naive_metadata(job: dict[str, Any]) -> dict[str, Any]:
    """The whole frame is built (as ours is), but only its first `prefix` rows are sent."""
    frame = visitor_frame(job["rows"], seed=job["seed"], changed=job["changed"])
    prefix = min(job["prefix"], len(frame))
    headers = {"x-pendo-integration-key": INTEGRATION_KEY}
    rss_before = _rss_mib()
    with httpx.Client(base_url=job["url"], headers=headers, timeout=30) as http:
        cpu, started = _cpu_seconds(), time.perf_counter()
        requests = _naive_metadata_loop(http, frame, prefix)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": prefix,
        "requests": requests,
        "frame_mib": frame.memory_usage(deep=True).sum() / MIB,
        "rss_before_mib": rss_before,
        "peak_rss_mib": _peak_rss_mib(),
    }


def naive_track(job: dict[str, Any]) -> dict[str, Any]:
    """Each event posted in timestamp order, one after another, with no pacing and no retry."""
    frame = event_frame(job["events"], job["visitors"], seed=job["seed"], now_ms=job["now_ms"])
    frame = frame.iloc[: job["prefix"]]
    transport = StampingTransport()
    headers = {"x-pendo-integration-key": TRACK_SECRET}
    statuses: Counter[int] = Counter()
    with httpx.Client(
        base_url=job["url"], headers=headers, timeout=30, transport=transport
    ) as http:
        cpu, started = _cpu_seconds(), time.perf_counter()
        for row in frame.to_dict("records"):
            body = {
                "type": "track",
                "event": row["event"],
                "visitorId": row["visitor_id"],
                "timestamp": row["ts"],
                "properties": {"source": row["source"]},
                "context": {},
            }
            statuses[http.post("/data/track", json=body).status_code] += 1
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "events": len(frame),
        "accepted": sum(n for status, n in statuses.items() if 200 <= status < 300),
        "statuses": {str(status): n for status, n in statuses.items()},
        "busiest_second": busiest_second(transport.sent_at),
        "peak_rss_mib": _peak_rss_mib(),
    }


JOBS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ours_metadata": ours_metadata,
    "ours_track": ours_track,
    "naive_metadata": naive_metadata,
    "naive_track": naive_track,
}
