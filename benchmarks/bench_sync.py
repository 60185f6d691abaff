"""Benchmark: `run_sync` against the local Pendo sandbox, beside the loop a user would write.

    .venv/bin/python benchmarks/bench_sync.py           # 1,000,000 visitors, 20,000 events
    .venv/bin/python benchmarks/bench_sync.py --quick   # 100,000 visitors, 5,000 events

The sandbox runs in its own process with injected latency; every measured run (ours and the
naive baseline) runs in a fresh child process of this script, so its peak RSS is its own.
The machine is shared and noisy: read the ratios, which compare runs made minutes apart on
the same machine, rather than any lone time. Writes `benchmarks/latest_results.md`.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from machine import cores, cpu_model
from sandbox_process import SandboxProcess, sandbox_process
from workloads import CHANGED_EVERY, sandbox_config

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "latest_results.md"
CHILD_TIMEOUT_SECONDS = 1800
HIGHER, LOWER = "higher is better", "lower is better"


@dataclass(frozen=True)
class Params:
    rows: int
    naive_rows: int
    events: int
    naive_events: int
    visitors: int
    cap: float
    latency_ms: float
    seed: int


@dataclass(frozen=True)
class Row:
    """One line of the results table; `ratio` is always ours ÷ naive."""

    figure: str
    ours: float
    naive: float
    better: str  # HIGHER, LOWER, or the bound the figure must keep
    digits: int = 1
    naive_scaled: bool = False  # the naive figure is scaled up from a prefix: marked "*"

    @property
    def ratio(self) -> str:
        if self.naive == 0:
            return "n/a" if self.ours == 0 else "inf"
        return f"{self.ours / self.naive:.2f}x"

    def cells(self) -> list[str]:
        ours, naive = _num(self.ours, self.digits), _num(self.naive, self.digits)
        naive += "*" if self.naive_scaled else ""
        return [self.figure, ours, naive, self.ratio, self.better]


def _num(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}" if digits else f"{round(value):,}"


# -- running things --------------------------------------------------------------------------


def run_child(job: dict[str, Any]) -> dict[str, Any]:
    """Run one measured job in a fresh interpreter; its last stdout line is the JSON result."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(job)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS)
    if done.returncode != 0:
        raise RuntimeError(f"child job {job['kind']} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(sandbox: SandboxProcess, job: dict[str, Any], *, counters: bool) -> dict[str, Any]:
    """One run from a freshly reset sandbox; `counters` only when the sandbox holds little."""
    sandbox.reset()
    before = sandbox.cpu_seconds()
    result = run_child({**job, "url": sandbox.url})
    result["sandbox_cpu"] = sandbox.cpu_seconds() - before
    if counters:
        result["sandbox"] = sandbox.counters()
    print(f"  {job['kind']:<15} {job.get('label', '')}: {result['seconds']:.1f}s", flush=True)
    return result


def bench_metadata(sandbox: SandboxProcess, p: Params, workdir: Path) -> dict[str, Any]:
    """First sync, unchanged re-sync and 1%-changed re-sync; ours and naive interleaved."""
    base = {"rows": p.rows, "seed": p.seed}
    ours = {**base, "kind": "ours_metadata", "state_url": f"sqlite:///{workdir / 'state.db'}"}
    naive = {**base, "kind": "naive_metadata", "prefix": p.naive_rows, "changed": False}
    return {
        "naive_first": measure(sandbox, {**naive, "label": "first"}, counters=False),
        "ours_first": measure(
            sandbox, {**ours, "label": "first", "changed": False, "run_id": "r1"}, counters=False
        ),
        "naive_again": measure(sandbox, {**naive, "label": "re-sync"}, counters=False),
        "ours_unchanged": measure(
            sandbox,
            {**ours, "label": "unchanged", "changed": False, "run_id": "r2"},
            counters=True,
        ),
        "ours_changed": measure(
            sandbox, {**ours, "label": "1% changed", "changed": True, "run_id": "r3"}, counters=True
        ),
    }


def bench_track(sandbox: SandboxProcess, p: Params, workdir: Path) -> dict[str, Any]:
    """The same events: ours capped at `cap` requests/s, the naive loop on a prefix."""
    base = {
        "events": p.events,
        "visitors": p.visitors,
        "seed": p.seed,
        "now_ms": int(time.time() * 1000),
    }
    return {
        "naive": measure(
            sandbox,
            {**base, "kind": "naive_track", "prefix": p.naive_events, "label": "events"},
            counters=True,
        ),
        "ours": measure(
            sandbox,
            {
                **base,
                "kind": "ours_track",
                "label": "events",
                "cap": p.cap,
                "run_id": "t1",
                "state_url": f"sqlite:///{workdir / 'track_state.db'}",
            },
            counters=True,
        ),
    }


# -- figures ---------------------------------------------------------------------------------


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(f"benchmark sanity check failed: {message}")


def metadata_rows(m: dict[str, Any], p: Params) -> list[Row]:
    """Checks that every sync did what it should, then the table's metadata lines."""
    first, unchanged, changed = m["ours_first"], m["ours_unchanged"], m["ours_changed"]
    _check(first["sent"] == p.rows and first["failed"] == 0, f"first sync: {first}")
    _check(unchanged["sent"] == 0 and unchanged["failed"] == 0, f"re-sync: {unchanged}")
    _check(changed["sent"] == math.ceil(p.rows / CHANGED_EVERY), f"1% re-sync: {changed}")
    return first_sync_rows(m, p) + resync_rows(m, p) + memory_rows(m)


def _scaled(result: dict[str, Any], p: Params, key: str) -> float:
    """A naive figure for the whole partition, from its prefix: the loop is flat per batch."""
    return result[key] * p.rows / result["rows"]


def first_sync_rows(m: dict[str, Any], p: Params) -> list[Row]:
    ours, naive = m["ours_first"], m["naive_first"]
    scaled = p.naive_rows < p.rows
    naive_seconds = _scaled(naive, p, "seconds")
    return [
        Row("first sync: wall time (s)", ours["seconds"], naive_seconds, LOWER, 1, scaled),
        Row(
            "first sync: rows/s",
            p.rows / ours["seconds"],
            p.rows / naive_seconds,
            HIGHER,
            0,
            scaled,
        ),
        Row(
            "first sync: requests",
            ours["requests"],
            _scaled(naive, p, "requests"),
            LOWER,
            0,
            scaled,
        ),
        Row(
            "first sync: client CPU per row (us)",
            ours["cpu_seconds"] / ours["rows"] * 1e6,
            naive["cpu_seconds"] / naive["rows"] * 1e6,
            LOWER,
        ),
    ]


def resync_rows(m: dict[str, Any], p: Params) -> list[Row]:
    """The naive loop has no state: both re-syncs re-send everything, one measured run."""
    naive, scaled = m["naive_again"], p.naive_rows < p.rows
    naive_seconds, naive_requests = _scaled(naive, p, "seconds"), _scaled(naive, p, "requests")
    rows = []
    for name, ours in (("unchanged", m["ours_unchanged"]), ("1% changed", m["ours_changed"])):
        rows += [
            Row(f"{name} re-sync: wall time (s)", ours["seconds"], naive_seconds, LOWER, 2, scaled),
            Row(
                f"{name} re-sync: requests (sandbox)",
                ours["sandbox"]["requests"],
                naive_requests,
                LOWER,
                0,
                scaled,
            ),
        ]
    return rows


def _added(result: dict[str, Any]) -> float:
    """Peak RSS above the RSS just before the sync (frame built, modules imported)."""
    return max(0.0, result["peak_rss_mib"] - result["rss_before_mib"])


def memory_rows(m: dict[str, Any]) -> list[Row]:
    """Peak RSS of the whole child, and what the sync added relative to the frame it read."""
    first, naive = m["ours_first"], m["naive_first"]
    return [
        Row("first sync: peak RSS (MiB)", first["peak_rss_mib"], naive["peak_rss_mib"], LOWER),
        Row(
            "first sync: RSS added / frame size",
            _added(first) / first["frame_mib"],
            _added(naive) / naive["frame_mib"],
            LOWER,
            2,
        ),
        Row(
            "unchanged re-sync: peak RSS (MiB)",
            m["ours_unchanged"]["peak_rss_mib"],
            m["naive_again"]["peak_rss_mib"],
            LOWER,
        ),
    ]


def track_rows(t: dict[str, Any], p: Params) -> list[Row]:
    ours, naive = t["ours"], t["naive"]
    _check(ours["sent"] == p.events and ours["failed"] == 0, f"track events: {ours}")
    return [
        Row(
            "track: events sent/s / cap",
            ours["sent"] / ours["seconds"] / p.cap,
            naive["events"] / naive["seconds"] / p.cap,
            HIGHER,
            2,
        ),
        Row(
            "track: events accepted/s / cap",
            ours["sent"] / ours["seconds"] / p.cap,
            naive["accepted"] / naive["seconds"] / p.cap,
            HIGHER,
            2,
        ),
        Row(
            "track: busiest 1 s window / cap",
            ours["busiest_second"] / p.cap,
            naive["busiest_second"] / p.cap,
            "must stay <= 1.00",
            2,
        ),
        Row(
            "track: pacing 429s (sandbox)",
            ours["sandbox"]["pacing_429"],
            naive["sandbox"]["pacing_429"],
            LOWER,
            0,
        ),
        Row(
            "track: events delivered (%)",
            100 * ours["sent"] / ours["events"],
            100 * naive["accepted"] / naive["events"],
            HIGHER,
        ),
    ]


# -- output ----------------------------------------------------------------------------------

HEADER = ["figure", "ours", "naive", "ratio ours/naive", "reading"]


def machine() -> dict[str, str]:
    return {
        "nproc": str(cores()),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def describe(p: Params, m: dict[str, Any], t: dict[str, Any], load: tuple[str, str]) -> list[str]:
    """The lines above and below the table: machine, parameters, and how to read them."""
    info = machine()
    naive_scaled = p.naive_rows < p.rows
    first = m["ours_first"]
    return [
        f"machine: nproc={info['nproc']}, {info['cpu']}, Python {info['python']}, "
        f"{info['platform']}; load average before/after: {load[0]} / {load[1]}",
        f"parameters: rows={p.rows:,} (frame {first['frame_mib']:.0f} MiB in pandas), "
        f"sandbox latency {p.latency_ms:g} ms per request in its own process, events={p.events:,} "
        f"of {p.visitors:,} visitors, cap={p.cap:g} requests/s, seed={p.seed}",
        "ours: run_sync with a fresh SQLite state store, the frame handed over in chunks of "
        "50,000 rows as the warehouse stream does, preflight on, default max_in_flight, "
        f"no request cap for metadata; track events capped at {p.cap:g}/s.",
        "naive: httpx.Client loop, 1000-record batches one after another from "
        "frame.iloc[...].to_dict('records'); no state, so every re-sync re-sends every row"
        + (
            f"; * run on the first {p.naive_rows:,} rows and scaled to {p.rows:,} "
            "(the whole frame is still built, so its RSS is comparable)"
            if naive_scaled
            else ""
        )
        + ". The same naive re-send is the baseline of both re-syncs.",
        f"naive track: each event posted in timestamp order, no pacing, no retry, on the first "
        f"{t['naive']['events']:,} events; 'busiest 1 s window' counts requests leaving the "
        "client within any one second.",
        f"sandbox CPU seconds, first sync: ours {first['sandbox_cpu']:.1f}, naive "
        f"{m['naive_first']['sandbox_cpu']:.1f} (naive on its prefix); sandbox peak RSS "
        f"{m['sandbox_peak_rss_mib']:.0f} MiB (it keeps every record it was sent until reset).",
        "ratio = ours / naive, both measured in this run, one run of each on a shared machine: "
        "time ratios move between runs (compare the load averages), request counts do not.",
    ]


def render_text(rows: list[Row], notes: list[str]) -> str:
    table = [HEADER, *[r.cells() for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [
        " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in table
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join([*notes[:2], "", *lines, "", *notes[2:]])


def render_markdown(rows: list[Row], notes: list[str]) -> str:
    table = ["| " + " | ".join(HEADER) + " |", "|---|---:|---:|---:|---|"]
    table += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"Generated by `benchmarks/bench_sync.py` (`make bench`) on {generated}.",
            "",
            *[f"- {note}" for note in notes[:2]],
            "",
            *table,
            "",
            *[f"- {note}" for note in notes[2:]],
            "",
        ]
    )


# -- entry point -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="visitor metadata rows")
    parser.add_argument("--naive-rows", type=int, default=100_000, help="naive loop's prefix")
    parser.add_argument("--events", type=int, default=20_000, help="track events")
    parser.add_argument("--naive-events", type=int, default=2_000, help="naive loop's prefix")
    parser.add_argument("--visitors", type=int, default=2_000, help="distinct event visitors")
    parser.add_argument("--cap", type=float, default=100.0, help="track requests per second")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="sandbox latency")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smoke run: 100k rows, 5k events")
    parser.add_argument("--no-write", action="store_true", help="do not write latest_results.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def params_from(args: argparse.Namespace) -> Params:
    rows, events, naive_events = args.rows, args.events, args.naive_events
    if args.quick:
        rows, events, naive_events = 100_000, 5_000, min(naive_events, 1_000)
    return Params(
        rows=rows,
        naive_rows=min(args.naive_rows, rows),
        events=events,
        naive_events=min(naive_events, events),
        visitors=min(args.visitors, events),
        cap=args.cap,
        latency_ms=args.latency_ms,
        seed=args.seed,
    )


def child_main(raw: str) -> int:
    """`--child JOB`: run one job here and print its result as the last line."""
    from runners import JOBS

    job = json.loads(raw)
    print(json.dumps(JOBS[job["kind"]](job), default=float))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child)
    # A plain SIGTERM would skip the `finally` blocks that stop the sandbox and the children.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    p = params_from(args)
    load_before = Path("/proc/loadavg").read_text().split()[0]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pendo-bench-") as tmp:
        workdir = Path(tmp)
        with sandbox_process(sandbox_config(p.latency_ms), workdir) as sandbox:
            print(f"sandbox at {sandbox.url}; metadata ({p.rows:,} rows):", flush=True)
            m = bench_metadata(sandbox, p, workdir)
            print(f"track events ({p.events:,}, cap {p.cap:g}/s):", flush=True)
            t = bench_track(sandbox, p, workdir)
            m["sandbox_peak_rss_mib"] = sandbox.peak_rss_mib()
    load = (load_before, Path("/proc/loadavg").read_text().split()[0])
    rows = metadata_rows(m, p) + track_rows(t, p)
    notes = describe(p, m, t, load)
    notes.append(f"total benchmark time {time.perf_counter() - started:.0f} s.")
    print()
    print(render_text(rows, notes))
    if not args.no_write:
        RESULTS_FILE.write_text(render_markdown(rows, notes))
        print(f"\nwritten to {RESULTS_FILE.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
