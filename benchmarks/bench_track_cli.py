"""Benchmark: track events through `dagster asset materialize`, with no request cap, beside a
sequential loop and a raw 16-thread httpx load generator against the same sandbox.

    .venv/bin/python benchmarks/bench_track_cli.py             # 20,000 events
    .venv/bin/python benchmarks/bench_track_cli.py --events N

The sandbox runs in its own process with 20 ms of latency per request. Ours is a whole process,
as users run it; its start-up (the same command on an empty partition) is measured and
subtracted. Every event has its own visitor, so Pendo's one-event-per-visitor-per-second rule
never makes anyone wait. Writes `benchmarks/latest_track_results.md`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml
from machine import cores, cpu_model
from sandbox_process import sandbox_process
from workloads import INTEGRATION_KEY, TRACK_SECRET, sandbox_config

REPO = Path(__file__).resolve().parents[1]
RESULTS_FILE = Path(__file__).resolve().parent / "latest_track_results.md"
LATENCY_MS = 20
THREADS = 16
SEQUENTIAL_EVENTS = 300  # the sequential loop is timed on a prefix and read as a rate


def _events(day: datetime, count: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"e-{i}",
            "visitor_id": f"v-{i}",
            "event_name": "report_viewed",
            "occurred_at": day + timedelta(seconds=i % 80_000),
        }
        for i in range(count)
    ]


def _bodies(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "type": "track",
            "event": r["event_name"],
            "visitorId": r["visitor_id"],
            "timestamp": int(r["occurred_at"].replace(tzinfo=UTC).timestamp() * 1000),
            "context": {},
        }
        for r in rows
    ]


def _raw_rate(url: str, bodies: list[dict[str, Any]]) -> float:
    """Events per second of 16 threads posting with one shared httpx client, nothing else."""
    headers = {"x-pendo-integration-key": TRACK_SECRET}
    queue = list(reversed(bodies))
    lock = threading.Lock()
    with httpx.Client(
        base_url=url, headers=headers, limits=httpx.Limits(max_connections=THREADS)
    ) as http:

        def work() -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                http.post("/data/track", json=body).raise_for_status()

        started = time.perf_counter()
        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return len(bodies) / (time.perf_counter() - started)


def _sequential_rate(url: str, bodies: list[dict[str, Any]]) -> float:
    headers = {"x-pendo-integration-key": TRACK_SECRET}
    with httpx.Client(base_url=url, headers=headers) as http:
        started = time.perf_counter()
        for body in bodies:
            http.post("/data/track", json=body).raise_for_status()
        return len(bodies) / (time.perf_counter() - started)


def _cli_seconds(work: Path, url: str, day: datetime, name: str) -> float:
    """Wall time of one `dagster asset materialize` of the day, in a fresh DAGSTER_HOME."""
    home = work / f"home-{name}"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PENDO_", "DAGSTER_"))}
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "PENDO_BASE_URL": url,
            "PENDO_TRACK_EVENT_SECRET": TRACK_SECRET,
            "PENDO_INTEGRATION_KEY": INTEGRATION_KEY,
            "PENDO_SYNCS_FILE": str(work / "syncs.yaml"),
            "PENDO_WAREHOUSE_URL": f"sqlite:///{work / 'warehouse.db'}",
            "PENDO_STATE_URL": f"sqlite:///{home / 'state.db'}",
            "PENDO_MAX_REQUESTS_PER_SECOND": "0",  # no cap
        }
    )
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "asset",
        "materialize",
        "-m",
        "pendo_assets.definitions",
        "--select",
        "pendo/events",
        "--partition",
        day.date().isoformat(),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the CLI run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    count = parser.parse_args().events
    day = datetime.combine(datetime.now(UTC).date() - timedelta(days=2), datetime.min.time())
    empty_day = day - timedelta(days=1)
    with tempfile.TemporaryDirectory(prefix="pendo-track-bench-") as tmp:
        work = Path(tmp)
        rows = _events(day, count)
        engine = sa.create_engine(f"sqlite:///{work / 'warehouse.db'}")
        table = sa.Table(
            "events",
            sa.MetaData(),
            sa.Column("event_id", sa.Text),
            sa.Column("visitor_id", sa.Text),
            sa.Column("event_name", sa.Text),
            sa.Column("occurred_at", sa.DateTime),
        )
        with engine.begin() as connection:
            table.create(connection)
            connection.execute(table.insert(), rows)
        engine.dispose()
        (work / "syncs.yaml").write_text(
            yaml.safe_dump(
                {
                    "start_date": (empty_day - timedelta(days=1)).date().isoformat(),
                    "syncs": [
                        {
                            "name": "events",
                            "object_type": "track_events",
                            "source": {"table": "events", "partition_column": "occurred_at"},
                            "mapping": {
                                "event_id": "event_id",
                                "visitor_id": "visitorId",
                                "event_name": "event",
                                "occurred_at": "timestamp",
                            },
                        }
                    ],
                }
            )
        )
        bodies = _bodies(rows)
        with sandbox_process(sandbox_config(LATENCY_MS), work) as sandbox:
            sequential = _sequential_rate(sandbox.url, bodies[:SEQUENTIAL_EVENTS])
            sandbox.reset()
            raw_before = _raw_rate(sandbox.url, bodies)
            sandbox.reset()
            # The least of two start-ups: a lone one moved by a second, a tenth of our run.
            startups = [_cli_seconds(work, sandbox.url, empty_day, f"startup-{k}") for k in (0, 1)]
            startup = min(startups)
            sandbox.reset()
            total = _cli_seconds(work, sandbox.url, day, "ours")
            stored = sandbox.counters()
            sandbox.reset()
            raw_after = _raw_rate(sandbox.url, bodies)
    raw = (raw_before + raw_after) / 2  # the machine's pace before and after ours
    ours = count / max(total - startup, 1e-9)
    lines = [
        f"{count:,} track events, one visitor each, sandbox latency {LATENCY_MS} ms in its own "
        f"process, no request cap; {os.cpu_count()} cores.",
        "",
        "| figure | events/s | ours / it | goal |",
        "|---|---|---|---|",
        f"| ours: `dagster asset materialize`, start-up ({startup:.1f} s) subtracted "
        f"| {ours:,.0f} | 1.00x | |",
        f"| sequential httpx loop | {sequential:,.0f} | {ours / sequential:.1f}x | at least 12x |",
        f"| raw load generator, {THREADS} threads, one httpx client "
        f"| {raw:,.0f} | {ours / raw:.0%} | at least 95% |",
        "",
        f"requests the sandbox answered in our run: {stored.get('requests')}; "
        f"pacing 429s: {stored.get('pacing_429')}.",
        "",
        f"machine: {cpu_model()}, {cores()} cores. Start-ups (s): "
        + ", ".join(f"{t:.1f}" for t in startups)
        + f" (the least subtracted); our run {total:.1f} s in all. The load generator, run "
        f"before and after ours: {raw_before:,.0f} and {raw_after:,.0f} events/s (their mean "
        "above).",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS_FILE.write_text(text + "\n")
    print(f"\nwritten to {RESULTS_FILE}")


if __name__ == "__main__":
    main()
