"""Benchmark: the shared Pendo rate budget beside pyrate-limiter's PostgresBucket, at 100 req/s.

    .venv/bin/python benchmarks/bench_rate_budget.py
    .venv/bin/python benchmarks/bench_rate_budget.py --seconds 4 --no-write   # smoke run

Three limiters, each capped at 100 requests a second: our `PostgresBudget` (one booked row on
the database clock), pyrate-limiter `Limiter(PostgresBucket(...))` with blocking
`try_acquire` (a log of rows under a table lock), and our `HostBudget` (a flock file).
Contention: 8 processes of 4 threads each, every thread acquiring as fast as it is let, so
demand far exceeds the cap; the figures are how close to the cap they get, whether any rolling
second goes over it, how evenly the processes share it, and what each admission costs in CPU
(waiting is the point, so latency is not a cost). Single run: one process of 16 threads, to
show the limiter is not what holds a lone run back. Pause: one of 8 processes calls
`pause(1.0)` (a 429 with Retry-After) and nobody should be admitted for a second.

Needs the local PostgreSQL (127.0.0.1:5432, database `test`); works in a schema of its own and
drops it. Writes `benchmarks/latest_budget_results.md`.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import platform
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from budget_workers import (
    OURS_HOST,
    OURS_POSTGRES,
    PAUSE_SECONDS,
    PYRATE_POOL_SIZE,
    PYRATE_POSTGRES,
    Job,
    run_worker,
)
from machine import cores, cpu_model, load_average

URL = os.environ.get(
    "PENDO_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RESULTS_FILE = Path(__file__).resolve().parent / "latest_budget_results.md"
LIMITERS = {
    OURS_POSTGRES: "ours: PostgresBudget",
    PYRATE_POSTGRES: "pyrate-limiter PostgresBucket",
    OURS_HOST: "ours: HostBudget (flock)",
}
START_MARGIN = 0.2  # seconds between "go" and the common start, for every process to wake
PAUSE_AFTER = 2.0  # seconds into the pause check when one process pauses


# -- figures ---------------------------------------------------------------------------------


def busiest_window(stamps: list[float], width: float = 1.0) -> int:
    """The most admissions within any rolling window of `width` seconds."""
    ordered = sorted(stamps)
    best, first = 0, 0
    for last, stamp in enumerate(ordered):
        while stamp - ordered[first] >= width:
            first += 1
        best = max(best, last - first + 1)
    return best


def jain(counts: list[int]) -> float:
    """Jain's fairness index: 1.0 when every process got the same, 1/n when one got all."""
    total = sum(counts)
    squares = sum(count * count for count in counts)
    return total * total / (len(counts) * squares) if squares else 0.0


@dataclass(frozen=True)
class Figures:
    """One limiter's measurement, from every worker's admissions and CPU."""

    rate: float  # admissions within the window per second / cap
    busiest: float  # busiest rolling second / cap
    share_min: float
    share_max: float
    jain: float
    client_cpu_ms: float  # per admission, every process
    server_cpu_ms: float | None  # per admission, PostgreSQL backends of our connections
    core_fraction: float  # client CPU / wall, summed over processes
    admitted: int
    refusals: int  # a blocking acquire that returned without a permit
    db_busiest: float | None = None  # pyrate: busiest second of its inserts, database clock
    stored_busiest: float | None = None  # pyrate: busiest second of the timestamps it stored
    stored_lag_ms: tuple[float, float] | None = None  # pyrate: stored behind inserted, p50/max


def figures(job: Job, results: list[dict[str, Any]]) -> Figures:
    start = results[0]["start"]
    end = start + job.seconds
    inside = [sum(start <= s < end for s in r["stamps"]) for r in results]
    every = [s for r in results for s in r["stamps"]]
    total = sum(inside)
    servers = [r["server_cpu_seconds"] for r in results]
    cpu = sum(r["cpu_seconds"] for r in results)
    return Figures(
        rate=total / job.seconds / job.cap,
        busiest=busiest_window(every) / job.cap,
        share_min=min(inside) / total,
        share_max=max(inside) / total,
        jain=jain(inside),
        client_cpu_ms=1000 * cpu / len(every),
        server_cpu_ms=None if None in servers else 1000 * sum(servers) / len(every),
        core_fraction=sum(r["cpu_seconds"] / r["wall_seconds"] for r in results),
        admitted=total,
        refusals=sum(r["refusals"] for r in results),
    )


@dataclass(frozen=True)
class PauseFigures:
    """What happened around one process's pause(1.0) while the others kept sending."""

    call_ms: float  # how long pause() itself took
    admitted_during: int  # admissions after pause() returned, within 1 s of its call
    longest_gap: float  # seconds, between two admissions after the call
    resumed_after: float  # seconds from the call to the first admission after that gap


def pause_figures(results: list[dict[str, Any]]) -> PauseFigures:
    called, returned = results[0]["pause"]
    every = sorted(s for r in results for s in r["stamps"])
    before = [s for s in every if s < called][-1:]
    after = [s for s in every if s >= called]
    points = before + after
    gap, resumed = max(
        ((later - earlier, later) for earlier, later in itertools.pairwise(points)),
        default=(0.0, called),
    )
    return PauseFigures(
        call_ms=1000 * (returned - called),
        admitted_during=sum(returned < s < called + PAUSE_SECONDS for s in every),
        longest_gap=gap,
        resumed_after=resumed - called,
    )


# -- pyrate's rows on the database clock ------------------------------------------------------

INSERT_LOG = "pyrate_insert_log"


def log_pyrate_inserts(admin: sa.Engine, schema: str, table: str) -> None:
    """Create pyrate's table (as PostgresBucket would) with a trigger that notes each row's
    stored timestamp and the database clock when it went in: PostgreSQL's own view of the
    admissions, which the table lock serialises. The trigger adds a little server work to
    pyrate's inserts."""
    bucket = f"{schema}.ratelimit___{table}"
    with admin.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {schema}.{INSERT_LOG} (bucket TEXT, "
            "stored_at DOUBLE PRECISION, inserted_at DOUBLE PRECISION)"
        )
        connection.exec_driver_sql(  # ::timestamptz in the inserting session, as pyrate reads
            f"CREATE OR REPLACE FUNCTION {schema}.log_insert() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN INSERT INTO {schema}.{INSERT_LOG} VALUES (TG_TABLE_NAME, "
            "extract(epoch FROM NEW.item_timestamp::timestamptz), "
            "extract(epoch FROM clock_timestamp())); RETURN NULL; END $$"
        )
        connection.exec_driver_sql(
            f"CREATE TABLE {bucket} (name VARCHAR, weight SMALLINT, item_timestamp TIMESTAMP)"
        )
        connection.exec_driver_sql(
            f"CREATE TRIGGER log_insert AFTER INSERT ON {bucket} "
            f"FOR EACH ROW EXECUTE FUNCTION {schema}.log_insert()"
        )


def with_pyrate_rows(
    found: Figures, admin: sa.Engine, schema: str, table: str, cap: float
) -> Figures:
    with admin.connect() as connection:
        rows = connection.execute(
            sa.text(f"SELECT stored_at, inserted_at FROM {schema}.{INSERT_LOG} WHERE bucket = :b"),
            {"b": f"ratelimit___{table}"},
        ).all()
    lags = sorted(1000 * (inserted - stored) for stored, inserted in rows)
    return replace(
        found,
        db_busiest=busiest_window([inserted for _, inserted in rows]) / cap,
        stored_busiest=busiest_window([stored for stored, _ in rows]) / cap,
        stored_lag_ms=(lags[len(lags) // 2], lags[-1]),
    )


# -- running ---------------------------------------------------------------------------------


def run(job: Job, processes: int) -> list[dict[str, Any]]:
    """`processes` spawned workers on `job`, started together once all are ready."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    go, start_at = context.Event(), context.Value("d", 0.0)
    workers = [
        context.Process(target=run_worker, args=(job, i, ready, go, start_at, results))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            index, error = ready.get(timeout=120)
            if error:
                raise RuntimeError(f"{job.kind} worker {index} could not start:\n{error}")
        start_at.value = time.monotonic() + START_MARGIN
        go.set()
        out = [results.get(timeout=job.seconds + 120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()  # ours, hung: no figure from it
    for result in out:
        if "error" in result:
            raise RuntimeError(f"{job.kind} worker {result['index']} failed:\n{result['error']}")
    return sorted(out, key=lambda result: result["index"])


@dataclass(frozen=True)
class Params:
    cap: float
    processes: int
    threads: int
    seconds: float
    single_threads: int
    single_seconds: float
    pause_seconds: float


def measure(
    p: Params, url: str, directory: str, admin: sa.Engine, schema: str
) -> tuple[dict[str, Figures], dict[str, Figures], dict[str, PauseFigures]]:
    """Contention, single run and pause, one limiter after another."""
    shared, single, paused = {}, {}, {}
    for kind in LIMITERS:
        contended = Job(kind, f"contended_{kind}", p.cap, p.threads, p.seconds, url, directory)
        alone = replace(
            contended,
            destination=f"single_{kind}",
            threads=p.single_threads,
            seconds=p.single_seconds,
        )
        for job, processes, into in ((contended, p.processes, shared), (alone, 1, single)):
            if kind == PYRATE_POSTGRES:
                log_pyrate_inserts(admin, schema, job.destination)
            into[kind] = figures(job, run(job, processes))
            if kind == PYRATE_POSTGRES:
                into[kind] = with_pyrate_rows(into[kind], admin, schema, job.destination, p.cap)
        print(f"  {LIMITERS[kind]}: measured", flush=True)
    for kind in (OURS_POSTGRES, OURS_HOST):  # pyrate-limiter has no pause
        job = Job(
            kind,
            f"paused_{kind}",
            p.cap,
            p.threads,
            p.pause_seconds,
            url,
            directory,
            pause_after=PAUSE_AFTER,
        )
        paused[kind] = pause_figures(run(job, p.processes))
        print(f"  {LIMITERS[kind]}: pause measured", flush=True)
    return shared, single, paused


# -- output ----------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _pair(values: tuple[float, float] | None) -> str:
    return "n/a" if values is None else f"{values[0]:,.0f} / {values[1]:,.0f}"


def table(
    p: Params,
    shared: dict[str, Figures],
    single: dict[str, Figures],
    paused: dict[str, PauseFigures],
) -> list[str]:
    header = ["figure", *LIMITERS.values(), "goal"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(LIMITERS) + "---|"]

    def row(label: str, cells: list[str], goal: str = "") -> None:
        lines.append("| " + " | ".join([label, *cells, goal]) + " |")

    def each(figures: dict[str, Any], attribute: str, digits: int = 2, scale: float = 1) -> list:
        out = []
        for kind in LIMITERS:
            value = getattr(figures[kind], attribute) if kind in figures else None
            out.append(_f(None if value is None else value * scale, digits))
        return out

    contended = f"{p.processes} processes x {p.threads} threads"
    row(
        f"{contended}: admitted/s / cap",
        each(shared, "rate"),
        "close to 0.95 (ours: the window guard)",
    )
    row(f"{contended}: busiest rolling 1 s / cap", each(shared, "busiest"), "<= 1.05")
    row(
        f"{contended}: busiest rolling 1 s / cap, database clock at insert",
        each(shared, "db_busiest"),
        "<= 1.00",
    )
    row(
        f"{contended}: busiest rolling 1 s / cap, timestamps pyrate stored",
        each(shared, "stored_busiest"),
    )
    row(
        f"{contended}: pyrate's stored timestamp behind the clock, p50 / max (ms)",
        [_pair(shared[k].stored_lag_ms) for k in LIMITERS],
        "0",
    )
    row(
        f"{contended}: per-process share, min / max (%)",
        [f"{100 * shared[k].share_min:.1f} / {100 * shared[k].share_max:.1f}" for k in LIMITERS],
        f"{100 / p.processes:.1f} each",
    )
    row(f"{contended}: Jain's fairness index", each(shared, "jain", 3), "1.000")
    row(f"{contended}: client CPU per admission (ms)", each(shared, "client_cpu_ms"), "lower")
    row(f"{contended}: PostgreSQL CPU per admission (ms)", each(shared, "server_cpu_ms"), "lower")
    row(
        f"{contended}: client CPU, all processes (% of one core)",
        each(shared, "core_fraction", 1, 100),
        "lower",
    )
    row(
        f"{contended}: blocking acquire returned False (times)",
        each(shared, "refusals", 0),
        "0",
    )
    alone = f"1 process x {p.single_threads} threads"
    row(
        f"{alone}: admitted/s / cap", each(single, "rate"), "close to 0.95 (ours: the window guard)"
    )
    row(f"{alone}: busiest rolling 1 s / cap", each(single, "busiest"), "<= 1.05")
    row(
        f"{alone}: busiest rolling 1 s / cap, database clock at insert",
        each(single, "db_busiest"),
        "<= 1.00",
    )
    row(
        f"{alone}: pyrate's stored timestamp behind the clock, p50 / max (ms)",
        [_pair(single[k].stored_lag_ms) for k in LIMITERS],
        "0",
    )
    row(f"{alone}: limiter's client CPU (% of one core)", each(single, "core_fraction", 1, 100))
    row(f"{alone}: client CPU per admission (ms)", each(single, "client_cpu_ms"), "lower")
    row(f"{alone}: PostgreSQL CPU per admission (ms)", each(single, "server_cpu_ms"), "lower")
    row(f"pause({PAUSE_SECONDS:g}): the call took (ms)", each(paused, "call_ms", 1), "small")
    row(
        f"pause({PAUSE_SECONDS:g}): admissions after it returned, within {PAUSE_SECONDS:g} s",
        each(paused, "admitted_during", 0),
        "0",
    )
    row(
        f"pause({PAUSE_SECONDS:g}): longest gap between admissions (s)",
        each(paused, "longest_gap"),
        f">= ~{PAUSE_SECONDS:g}",
    )
    row(
        f"pause({PAUSE_SECONDS:g}): sending resumed after the call (s)",
        each(paused, "resumed_after"),
        f"~{PAUSE_SECONDS:g}",
    )
    return lines


def machine() -> str:
    return f"nproc={cores()}, {cpu_model()}, Python {platform.python_version()}"


def _versions() -> str:
    from importlib.metadata import version

    return ", ".join(
        f"{name} {version(name)}" for name in ("pyrate-limiter", "psycopg", "psycopg-pool")
    )


def render(p: Params, lines: list[str], load: tuple[str, str], server_version: str) -> str:
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = [
        f"machine: {machine()}; load average (1/5/15 min) before: {load[0]}, after: {load[1]}",
        f"parameters: cap {p.cap:g} requests/s; contention: {p.processes} spawned processes x "
        f"{p.threads} threads for {p.seconds:g} s; single run: 1 process x {p.single_threads} "
        f"threads for {p.single_seconds:g} s; pause: {p.processes} x {p.threads} for "
        f"{p.pause_seconds:g} s, process 0 calls pause({PAUSE_SECONDS:g}) at {PAUSE_AFTER:g} s; "
        f"{server_version.split(' on ')[0]} on 127.0.0.1 (synchronous_commit on); {_versions()}",
    ]
    tail = [
        "each worker process builds its own limiter as a separate run would: `PostgresBudget("
        "url).limiter(destination, cap)` (4 pooled driver connections in autocommit), pyrate "
        "`Limiter(PostgresBucket(ConnectionPool(min_size=1, "
        f"max_size={PYRATE_POOL_SIZE}), table, [Rate({p.cap:g}, Duration.SECOND)]))` with "
        "`try_acquire(name, blocking=True)` (default buffer_ms=50, leaker on), "
        "`HostBudget(private temp dir).limiter(destination, cap)`. Every thread calls acquire "
        "in a loop and stamps `time.monotonic()` when it returns (one clock for all processes "
        "of the host).",
        "admitted/s: admissions stamped within the window divided by its length; busiest rolling "
        "1 s: over every admission, including the last ones a thread finishes after the window; "
        "shares and Jain's index: per process, within the window.",
        "client CPU: `time.process_time()` of each worker (every thread, pyrate's leaker "
        "included) from the common start until its threads finished, divided by its admissions; "
        "'% of one core' is that CPU over the same wall time. PostgreSQL CPU: "
        "`/proc/PID/schedstat` run time of the backends of our own connections (their pids "
        "noted on connect), from connect or the start to close or the end; autovacuum, WAL "
        "writer and backend start-up are not counted.",
        "pyrate's rows: an AFTER INSERT trigger on its table (created beforehand with its "
        "own columns) logs each row's stored timestamp and `clock_timestamp()` at the insert, "
        "which pyrate's table lock serialises: the database's own view of its admissions. "
        "pyrate's blocking `try_acquire` can return False without a permit under contention; "
        "the sender then asks again, and each such return is counted.",
        "pause: admissions of any process stamped after `pause()` returned and within "
        f"{PAUSE_SECONDS:g} s of its call; the longest gap between consecutive admissions from "
        "the last one before the call on.",
        "one run on a shared 2-core machine: the CPU figures move between runs (compare the "
        "load averages); the rate, window and share figures are what the limiters let through.",
    ]
    return "\n".join(
        [
            "# Rate budget benchmark",
            "",
            f"Generated by `benchmarks/bench_rate_budget.py` on {generated}.",
            "",
            *[f"- {note}" for note in head],
            "",
            *lines,
            "",
            *[f"- {note}" for note in tail],
            "",
        ]
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cap", type=float, default=100.0, help="requests a second")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4, help="per contending process")
    parser.add_argument("--seconds", type=float, default=8.0, help="contention window")
    parser.add_argument("--single-threads", type=int, default=16)
    parser.add_argument("--single-seconds", type=float, default=5.0)
    parser.add_argument("--pause-seconds", type=float, default=4.0)
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    p = Params(
        cap=args.cap,
        processes=args.processes,
        threads=args.threads,
        seconds=args.seconds,
        single_threads=args.single_threads,
        single_seconds=args.single_seconds,
        pause_seconds=max(args.pause_seconds, PAUSE_AFTER + 2 * PAUSE_SECONDS),
    )
    schema = f"bench_budget_{uuid.uuid4().hex[:8]}"
    url = sa.make_url(URL).update_query_dict({"options": f"-c search_path={schema}"})
    directory = tempfile.mkdtemp(prefix="bench-budget-")  # mode 0700
    admin = sa.create_engine(URL, poolclass=sa.NullPool)
    with admin.begin() as connection:
        server_version = connection.exec_driver_sql("SELECT version()").scalar_one()
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    load_before = load_average()
    try:
        shared, single, paused = measure(p, url.render_as_string(False), directory, admin, schema)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
        shutil.rmtree(directory, ignore_errors=True)
    load = (load_before, load_average())
    text = render(p, table(p, shared, single, paused), load, server_version)
    print(text)
    if not args.no_write:
        RESULTS_FILE.write_text(text)
        print(f"written to {RESULTS_FILE}")


if __name__ == "__main__":
    main()
