"""Benchmark: visitor metadata through `dagster asset materialize`, as users run it, beside the
loop a user would write (`benchmarks/naive_metadata_loop.py`), both as whole processes.

    .venv/bin/python benchmarks/bench_sync_cli.py                 # 1,000,000 rows, 3,000,000
    .venv/bin/python benchmarks/bench_sync_cli.py --rows 20000 --memory-rows 60000

The warehouse is the local PostgreSQL (schema `bench_cli`, dropped at the end); the Pendo
sandbox runs in its own process with 20 ms of latency per request and is reset before every
measured run. Each side's start-up (the same command on an empty partition) is measured and
subtracted from its wall time and CPU. Every measured command runs under a small wrapper
process (this script with `--measure`) that is a child subreaper, so the CPU and peak RSS it
reports cover every process the command started, Dagster's step processes included. Writes
`benchmarks/latest_cli_results.md`.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa
import yaml
from machine import cores, cpu_model, load_average
from sandbox_process import SandboxProcess, sandbox_process
from workloads import CHANGED_EVERY, INTEGRATION_KEY, TRACK_SECRET, sandbox_config, visitor_frame

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_FILE = HERE / "latest_cli_results.md"
NAIVE_SCRIPT = HERE / "naive_metadata_loop.py"
DEFAULT_WAREHOUSE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_cli"
SYNC = "visitors"
WRITE_PATH = "/api/v1/metadata/visitor/custom/value"
BATCH = 1000  # records per request, ours (the client's default) and naive alike
LATENCY_MS = 20
SEED, MEMORY_SEED = 7, 8
DAY_US = 86_400_000_000
COPY_CHUNK = 250_000
RUN_TIMEOUT_SECONDS = 3600
STRAY_WAIT_SECONDS = 30.0
PR_SET_CHILD_SUBREAPER = 36
LOCK_KEY = 0x50454E444F  # "PENDO": the advisory lock that keeps two runs apart
_ACCESS = re.compile(r'"([A-Z]+) (/\S*) HTTP/[\d.]+" (\d{3})')


# -- the wrapper: one measured command, run as `bench_sync_cli.py --measure LOG -- COMMAND` -----


def _become_subreaper() -> None:
    """Orphaned descendants (a forkserver, step processes) get re-parented to us, not to init,
    so we reap them and RUSAGE_CHILDREN covers the whole tree."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _child_pids() -> list[int]:
    """Our live children, from /proc (psutil is not installed)."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == me:
                    found.append(int(entry.name))
    return found


def _reap_descendants() -> int:
    """Wait for every descendant to exit (killing any still alive after a while, by pid); the
    number killed is returned, so a stray is never silent."""
    deadline, killed = time.monotonic() + STRAY_WAIT_SECONDS, 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return killed
        if pid:
            continue
        if time.monotonic() > deadline:
            for stray in _child_pids():
                with suppress(ProcessLookupError):
                    os.kill(stray, signal.SIGKILL)
                    killed += 1
            deadline = math.inf
        time.sleep(0.05)


def measure_main(log: Path, command: list[str]) -> int:
    """Run `command` (output to `log`), then print wall, tree CPU and tree peak RSS as JSON."""
    _become_subreaper()
    with log.open("wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, own = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    killed = _reap_descendants()
    tree = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "returncode": child.returncode,
        "seconds": seconds,
        "cpu_seconds": tree.ru_utime + tree.ru_stime,
        "peak_rss_kib": tree.ru_maxrss,  # the largest single process of the tree (KiB)
        "command_peak_rss_kib": own.ru_maxrss,  # the command and the children it reaped itself
        "strays_killed": killed,
    }
    print(json.dumps(result))
    return 0


# -- the warehouse ---------------------------------------------------------------------------


def _conninfo(url: str) -> str:
    """psycopg's own URL for the SQLAlchemy one (the setup needs COPY and autocommit)."""
    parsed = sa.make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _execute(url: str, *statements: str, params: tuple[Any, ...] | None = None) -> int:
    with psycopg.connect(_conninfo(url), autocommit=True) as connection:
        rowcount = 0
        for statement in statements:
            rowcount = connection.execute(statement, params).rowcount  # type: ignore[arg-type]
        return rowcount


@contextmanager
def exclusive(url: str) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock for the whole benchmark: a second run at the same time
    would drop and reload the schema under the first one."""
    with psycopg.connect(_conninfo(url), autocommit=True) as connection:
        row = connection.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        if not (row and row[0]):
            raise SystemExit(f"another bench_sync_cli.py run is using schema {SCHEMA}")
        yield  # the lock goes with the connection


def create_schema(url: str) -> None:
    _execute(
        url,
        f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE",
        f"CREATE SCHEMA {SCHEMA}",
        f"CREATE TABLE {SCHEMA}.visitors (id text, plan text, seats integer, "
        "is_trial boolean, updated_at timestamptz)",
    )


def drop_schema(url: str) -> None:
    _execute(url, f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def load_day(url: str, frame: pd.DataFrame, day: datetime) -> None:
    """COPY the frame in as one day's rows, `updated_at` spread evenly over the day."""
    step = DAY_US // max(len(frame), 1)
    statement = (
        f"COPY {SCHEMA}.visitors (id, plan, seats, is_trial, updated_at) FROM STDIN (FORMAT csv)"
    )
    with (
        psycopg.connect(_conninfo(url)) as connection,
        connection.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        for first in range(0, len(frame), COPY_CHUNK):
            part = frame.iloc[first : first + COPY_CHUNK].copy()
            offsets = np.arange(first, first + len(part), dtype=np.int64) * step
            part["updated_at"] = pd.Timestamp(day) + pd.to_timedelta(offsets, unit="us")
            copy.write(part.to_csv(index=False, header=False))


def finish_load(url: str) -> None:
    """An index on the partition column (as a warehouse would have) and VACUUM ANALYZE, so the
    first reader pays neither a full scan of other days nor the hint-bit writes."""
    _execute(
        url,
        f"CREATE INDEX ON {SCHEMA}.visitors (updated_at)",
        f"VACUUM ANALYZE {SCHEMA}.visitors",
    )


def change_one_percent(url: str, day: datetime) -> int:
    """seats + 1 on every 100th visitor of the day (ids v0000000, v0000100, ...), in SQL."""
    return _execute(
        url,
        f"UPDATE {SCHEMA}.visitors SET seats = seats + 1 "
        "WHERE updated_at >= %s AND updated_at < %s "
        f"AND substring(id from 2)::bigint %% {CHANGED_EVERY} = 0",
        params=(day, day + timedelta(days=1)),
    )


def day_count(url: str, day: datetime) -> int:
    with psycopg.connect(_conninfo(url)) as connection:
        row = connection.execute(
            f"SELECT count(*) FROM {SCHEMA}.visitors WHERE updated_at >= %s AND updated_at < %s",
            (day, day + timedelta(days=1)),
        ).fetchone()
    return int(row[0]) if row else 0


# -- measured runs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One measured whole-process run, and what the sandbox saw of it."""

    label: str
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    command_peak_rss_mib: float
    requests: Counter[str] = field(default_factory=Counter)  # "METHOD path status" -> count
    sandbox_cpu_seconds: float = 0.0  # what the stand-in used meanwhile, on the same cores

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def writes_ok(self) -> int:
        """Metadata-write requests the sandbox answered 200."""
        return self.requests[f"POST {WRITE_PATH} 200"]


class Bench:
    """The sandbox, the work directory and the environment every measured command shares."""

    def __init__(self, sandbox: SandboxProcess, work: Path, warehouse_url: str) -> None:
        self.sandbox = sandbox
        self.work = work
        self.warehouse_url = warehouse_url
        self.sandbox_log = work / "sandbox.log"

    def home(self, name: str) -> Path:
        """A DAGSTER_HOME with the repo's dagster.yaml; the sync state lives in it too."""
        home = self.work / f"home-{name}"
        if not home.exists():
            home.mkdir()
            shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
        return home

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PENDO_", "DAGSTER_"))}
        return {**env, **extra}

    def ours(self, label: str, home: Path, day: datetime) -> Run:
        env = self._env(
            {
                "DAGSTER_HOME": str(home),
                "PENDO_BASE_URL": self.sandbox.url,
                "PENDO_INTEGRATION_KEY": INTEGRATION_KEY,
                "PENDO_TRACK_EVENT_SECRET": TRACK_SECRET,
                "PENDO_SYNCS_FILE": str(self.work / "syncs.yaml"),
                "PENDO_WAREHOUSE_URL": self.warehouse_url,
                "PENDO_STATE_URL": f"sqlite:///{home / 'state.db'}",
                "PENDO_MAX_REQUESTS_PER_SECOND": "0",  # no cap
            }
        )
        dagster = str(Path(sys.executable).parent / "dagster")
        command = [dagster, "asset", "materialize", "-m", "pendo_assets.definitions"]
        command += ["--select", f"pendo/{SYNC}", "--partition", day.date().isoformat()]
        return self._measure(label, command, env)

    def naive(self, label: str, day: datetime) -> Run:
        env = self._env({"PENDO_INTEGRATION_KEY": INTEGRATION_KEY})
        command = [sys.executable, str(NAIVE_SCRIPT), self.sandbox.url]
        command += [day.date().isoformat(), self.warehouse_url]
        return self._measure(label, command, env)

    def _measure(self, label: str, command: list[str], env: dict[str, str]) -> Run:
        """Reset the sandbox, run `command` under the wrapper, read the access log it left."""
        self.sandbox.reset()
        mark = self._settled_log_size()
        log = self.work / f"{label.replace(' ', '-')}.log"
        wrapper = [sys.executable, str(Path(__file__).resolve()), "--measure", str(log), "--"]
        sandbox_cpu = self.sandbox.cpu_seconds()
        with _process_group([*wrapper, *command], env) as process:
            out, _ = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
        sandbox_cpu = self.sandbox.cpu_seconds() - sandbox_cpu
        lines = out.strip().splitlines()
        result = json.loads(lines[-1]) if process.returncode == 0 and lines else None
        if result is None or result["returncode"] != 0:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
            raise RuntimeError(f"{label} failed ({result or out!r}); its output ends:\n{tail}")
        if result["strays_killed"]:
            print(f"  note: {label} left {result['strays_killed']} process(es); killed")
        run = Run(
            label=label,
            seconds=result["seconds"],
            cpu_seconds=result["cpu_seconds"],
            peak_rss_mib=result["peak_rss_kib"] / 1024,
            command_peak_rss_mib=result["command_peak_rss_kib"] / 1024,
            requests=self._requests_since(mark),
            sandbox_cpu_seconds=sandbox_cpu,
        )
        print(
            f"  {label:<28} {run.seconds:7.2f} s wall, {run.cpu_seconds:7.2f} s CPU, "
            f"{run.peak_rss_mib:7.0f} MiB peak, {run.total_requests:6,} requests",
            flush=True,
        )
        return run

    def _settled_log_size(self) -> int:
        """The access log's size once the sandbox has stopped writing to it."""
        size = -1
        while (now := self.sandbox_log.stat().st_size) != size:
            size = now
            time.sleep(0.3)
        return size

    def _requests_since(self, mark: int) -> Counter[str]:
        """Pendo API requests in the sandbox's access log after `mark`: a cheap, exact count
        (the state route copies every stored record)."""
        self._settled_log_size()
        with self.sandbox_log.open("rb") as log:
            log.seek(mark)
            text = log.read().decode(errors="replace")
        found: Counter[str] = Counter()
        for method, path, status in _ACCESS.findall(text):
            path = path.split("?", 1)[0]
            if not path.startswith("/sandbox/"):
                found[f"{method} {path} {status}"] += 1
        return found

    def state(self) -> dict[str, Any]:
        """The sandbox's whole state: call only while it holds few records."""
        response = httpx.get(
            f"{self.sandbox.url}/sandbox/state", params={"requests": "false"}, timeout=300
        )
        response.raise_for_status()
        return response.json()


@contextmanager
def _process_group(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """A wrapper in its own process group; on any error (Ctrl-C, SIGTERM, a timeout) the
    whole group it leads gets SIGTERM, then SIGKILL if it lingers."""
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        yield process
    except BaseException:
        _stop_group(process)
        process.wait()
        raise


def _stop_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the wrapper's group (the command and its children share it), SIGKILL after
    20 s; the group is gone once no member, zombie or not, is left."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            process.poll()  # reaps the wrapper, so its zombie does not keep the group alive
            os.killpg(process.pid, 0)  # raises ProcessLookupError once the group is gone
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)


def reported(home: Path) -> dict[str, Any]:
    """What our last run of the sync reported in its materialization (sent, failed, ...)."""
    import dagster as dg  # only here: the parent needs it for this one read

    with dg.DagsterInstance.from_config(str(home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["pendo", SYNC]))
    if event is None or event.asset_materialization is None:
        return {}
    metadata = event.asset_materialization.metadata
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


# -- the scenarios ---------------------------------------------------------------------------


@dataclass
class Results:
    """Every run, plus the checks made on what the sandbox received."""

    ours: dict[str, Run] = field(default_factory=dict)
    naive: dict[str, Run] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    held_after_first: int = 0
    held_exact: bool = False
    held_how: str = ""
    changed_records: int = 0
    changed_ok: bool = False
    changed_rows_in_sql: int = 0
    unchanged_counter: int = -1  # the sandbox's own request counter after the unchanged re-sync
    sandbox_peak_rss_mib: float = 0.0
    startups: dict[str, list[Run]] = field(default_factory=dict)


@dataclass(frozen=True)
class Days:
    """The days the benchmark uses: the measured one, an empty one, the memory point's."""

    day: datetime
    empty: datetime
    memory: datetime

    @classmethod
    def before(cls, today: date) -> Days:
        day = datetime.combine(today - timedelta(days=2), datetime.min.time(), tzinfo=UTC)
        return cls(day=day, empty=day - timedelta(days=1), memory=day - timedelta(days=3))


def write_syncs_file(path: Path, days: Days) -> None:
    start = (days.memory - timedelta(days=1)).date().isoformat()
    sync = {
        "name": SYNC,
        "object_type": "visitor_metadata",
        "mode": "upsert",
        "source": {"table": f"{SCHEMA}.visitors", "partition_column": "updated_at"},
        "mapping": {"id": "visitorId", "plan": "plan", "seats": "seats", "is_trial": "is_trial"},
    }
    path.write_text(yaml.safe_dump({"start_date": start, "syncs": [sync]}, sort_keys=False))


def run_scenarios(bench: Bench, args: argparse.Namespace, days: Days) -> Results:
    """Start-ups, first sync, unchanged and 1%-changed re-syncs, then the memory point."""
    r = Results()
    print(f"start-up (an empty partition, {args.startup_runs} of each):", flush=True)
    fresh, used, naive = [], [], []
    for k in range(args.startup_runs):
        startup_home = bench.home(f"startup-{k}")
        fresh.append(bench.ours(f"ours start-up, fresh home {k}", startup_home, days.empty))
        used.append(bench.ours(f"ours start-up, used home {k}", startup_home, days.empty))
        if not args.skip_naive:
            naive.append(bench.naive(f"naive start-up {k}", days.empty))
    r.startups = {"ours, fresh home": fresh, "ours, used home": used, "naive": naive}
    r.ours["startup"], r.ours["startup_warm"] = _least(fresh), _least(used)
    if naive:
        r.naive["startup"] = _least(naive)

    print(f"first sync ({args.rows:,} rows, fresh state):", flush=True)
    home = bench.home("ours")
    r.ours["first"] = bench.ours("ours first sync", home, days.day)
    r.reports["first"] = reported(home)
    r.held_after_first, r.held_exact, r.held_how = records_held(
        bench, r.ours["first"], args.rows, args.exact_count_limit
    )
    if not args.skip_naive:
        r.naive["first"] = bench.naive("naive first sync", days.day)

    print("unchanged re-sync (same home and state):", flush=True)
    r.ours["unchanged"] = bench.ours("ours unchanged re-sync", home, days.day)
    r.reports["unchanged"] = reported(home)
    r.unchanged_counter = int(bench.state()["counters"]["requests"])  # reset before: cheap

    r.changed_rows_in_sql = change_one_percent(bench.warehouse_url, days.day)
    print(f"1% changed ({r.changed_rows_in_sql:,} rows updated in SQL):", flush=True)
    r.ours["changed"] = bench.ours("ours 1% changed re-sync", home, days.day)
    r.reports["changed"] = reported(home)
    r.changed_records, r.changed_ok, counted = check_changed(bench, args.rows)
    if counted != r.ours["changed"].total_requests:
        raise RuntimeError(
            f"the sandbox counted {counted} requests in the 1% re-sync, its access log "
            f"{r.ours['changed'].total_requests}: request counts from the log cannot be trusted"
        )

    if args.memory_rows:
        print(f"memory point ({args.memory_rows:,} rows, fresh state):", flush=True)
        memory_home = bench.home("memory")
        r.ours["memory"] = bench.ours("ours first sync, memory", memory_home, days.memory)
        r.reports["memory"] = reported(memory_home)
    r.sandbox_peak_rss_mib = bench.sandbox.peak_rss_mib()
    bench.sandbox.reset()
    return r


def _least(runs: list[Run]) -> Run:
    """The start-up to subtract: each figure's minimum over the repeats, the least noisy
    estimate of a fixed cost (so the net figures err towards the slow side)."""
    return Run(
        label=f"start-up, least of {len(runs)}",
        seconds=min(run.seconds for run in runs),
        cpu_seconds=min(run.cpu_seconds for run in runs),
        peak_rss_mib=min(run.peak_rss_mib for run in runs),
        command_peak_rss_mib=min(run.command_peak_rss_mib for run in runs),
    )


def records_held(bench: Bench, first: Run, rows: int, limit: int) -> tuple[int, bool, str]:
    """How many records the sandbox holds after the first sync: exact up to `limit` rows;
    above it, the state route (the only way to count them) would copy every record, so only
    an upper bound from the access log."""
    if rows <= limit:
        held = len(bench.state()["metadata"]["visitor"])
        return held, True, "exact: distinct visitors in the sandbox's state"
    return (
        first.writes_ok * BATCH,
        False,
        f"an upper bound, not a count: metadata writes answered 200 (access log) x "
        f"{BATCH:,}; batches need not be full, and the state route would copy every record "
        "(--exact-count-limit raises the limit)",
    )


def check_changed(bench: Bench, rows: int) -> tuple[int, bool, int]:
    """The sandbox was reset before the re-sync, so it holds exactly what was sent: the
    changed visitors with their new seats, and nothing else. Also its request counter, to
    check the access-log count against."""
    state = bench.state()
    visitors = state["metadata"]["visitor"]
    expected = visitor_frame(rows, seed=SEED, changed=True).iloc[::CHANGED_EVERY]
    wanted = {vid: int(seats) for vid, seats in zip(expected["id"], expected["seats"], strict=True)}
    got = {vid: entry["custom"].get("seats") for vid, entry in visitors.items()}
    return len(visitors), got == wanted, int(state["counters"]["requests"])


# -- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    figure: str
    ours: str
    naive: str = ""
    ratio: str = ""
    goal: str = ""
    met: bool | str | None = None  # a string: the goal could not be judged, and why

    def cells(self) -> list[str]:
        verdict = self.met if isinstance(self.met, str) else ""
        if isinstance(self.met, bool):
            verdict = "met" if self.met else "**NOT met**"
        return [self.figure, self.ours, self.naive, self.ratio, self.goal, verdict]


def _s(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _ratio(ours: float, naive: float) -> str:
    return "n/a" if naive <= 0 or ours < 0 else f"{ours / naive:.2f}x"


def _rate(rows: int, seconds: float) -> str:
    return _s(rows / seconds, 0) if seconds > 0 else "n/a"


NOISE = "undetermined (net <= 0 s: noise)"


def table(r: Results, args: argparse.Namespace) -> list[Line]:
    """The figures and their goals; naive cells say "skipped" when the loop was not run."""
    rows, changed_target = args.rows, math.ceil(args.rows / CHANGED_EVERY)
    o, n = r.ours, r.naive
    fresh, warm, first = o["startup"], o["startup_warm"], o["first"]
    first_net = first.seconds - fresh.seconds
    cpu_net = first.cpu_seconds - fresh.cpu_seconds
    unchanged_net = o["unchanged"].seconds - warm.seconds
    changed_net = o["changed"].seconds - warm.seconds
    naive = n.get("first")
    naive_net = naive.seconds - n["startup"].seconds if naive else math.nan
    naive_cpu = naive.cpu_seconds - n["startup"].cpu_seconds if naive else math.nan
    naive_rss = naive.peak_rss_mib if naive else math.nan
    resend = f"{naive.total_requests:,} (full resend)" if naive else "skipped"

    def cell(run: str, attr: str, digits: int = 2) -> str:
        return _s(getattr(n[run], attr), digits) if run in n else "skipped"

    def ratio(ours: float, base: float) -> str:
        return _ratio(ours, base) if naive else ""

    def verdict(condition: bool, *nets: float) -> bool | str | None:
        if not naive:
            return None
        return NOISE if any(net <= 0 for net in nets) else condition

    lines = [
        Line(
            "start-up, empty partition: wall (s)",
            f"{_s(fresh.seconds)} (used home {_s(warm.seconds)})",
            cell("startup", "seconds"),
        ),
        Line(
            "start-up, empty partition: CPU (s)",
            f"{_s(fresh.cpu_seconds)} (used home {_s(warm.cpu_seconds)})",
            cell("startup", "cpu_seconds"),
        ),
        Line(
            "start-up, empty partition: peak RSS (MiB)",
            _s(fresh.peak_rss_mib, 0),
            cell("startup", "peak_rss_mib", 0),
        ),
        Line("first sync: wall, raw (s)", _s(first.seconds), cell("first", "seconds")),
        Line(
            "first sync: wall, start-up subtracted (s)",
            _s(first_net),
            _s(naive_net) if naive else "skipped",
            ratio(first_net, naive_net),
            "<= 0.20x (5x faster)",
            verdict(naive_net >= 5 * first_net, first_net, naive_net),
        ),
        Line(
            "first sync: rows/s, start-up subtracted",
            _rate(rows, first_net),
            _rate(rows, naive_net) if naive else "skipped",
            ratio(naive_net, first_net),
        ),
        Line(
            "first sync: client CPU per row, start-up subtracted (us)",
            _s(cpu_net / rows * 1e6),
            _s(naive_cpu / rows * 1e6) if naive else "skipped",
            ratio(cpu_net, naive_cpu),
            "<= naive",
            verdict(cpu_net <= naive_cpu, naive_cpu),
        ),
        Line(
            "first sync: client CPU, raw (s)", _s(first.cpu_seconds), cell("first", "cpu_seconds")
        ),
        Line(
            "first sync: the sandbox's own CPU meanwhile (s)",
            _s(first.sandbox_cpu_seconds),
            cell("first", "sandbox_cpu_seconds"),
        ),
        Line(
            "first sync: peak RSS, largest process (MiB)",
            _s(first.peak_rss_mib, 0),
            cell("first", "peak_rss_mib", 0),
            ratio(first.peak_rss_mib, naive_rss),
            "<= naive",
            verdict(first.peak_rss_mib <= naive_rss),
        ),
        Line(
            "first sync: requests (sandbox access log)",
            f"{first.total_requests:,}",
            f"{naive.total_requests:,}" if naive else "skipped",
        ),
        Line(
            "first sync: records the sandbox holds"
            + ("" if r.held_exact else " (upper bound: writes x 1,000)"),
            f"{r.held_after_first:,}",
            goal=f"= rows ({rows:,})",
            met=(r.held_after_first == rows)
            if r.held_exact
            else ("unverified" if r.held_after_first >= rows else False),
        ),
        Line(
            "unchanged re-sync: requests (sandbox counter / access log)",
            f"{r.unchanged_counter:,} / {o['unchanged'].total_requests:,}",
            resend,
            goal="0",
            met=r.unchanged_counter == 0 and o["unchanged"].total_requests == 0,
        ),
        Line(
            "unchanged re-sync: wall, start-up subtracted (s)",
            _s(unchanged_net),
            f"{_s(naive_net)} (full resend)" if naive else "skipped",
            ratio(max(unchanged_net, 0.0), naive_net),
            "<= 0.10x",
            verdict(unchanged_net <= 0.10 * naive_net, naive_net),
        ),
        Line(
            "1% changed re-sync: records sent (sandbox, exact)",
            f"{r.changed_records:,}",
            f"{rows:,} (full resend)" if naive else "skipped",
            goal=f"= {changed_target:,}, the changed ones",
            met=r.changed_records == changed_target and r.changed_ok,
        ),
        Line(
            "1% changed re-sync: requests (access log)", f"{o['changed'].total_requests:,}", resend
        ),
        Line(
            "1% changed re-sync: wall, start-up subtracted (s)",
            _s(changed_net),
            f"{_s(naive_net)} (full resend)" if naive else "skipped",
            ratio(max(changed_net, 0.0), naive_net),
        ),
    ]
    if "memory" in o:
        memory = o["memory"]
        lines += [
            Line(
                f"memory point: peak RSS at {args.memory_rows:,} rows (MiB)",
                f"{_s(memory.peak_rss_mib, 0)} (vs {_s(first.peak_rss_mib, 0)} at {rows:,})",
                ratio=f"{memory.peak_rss_mib / first.peak_rss_mib:.2f}x of {rows:,} rows",
                goal="<= 1.20x",
                met=memory.peak_rss_mib <= 1.2 * first.peak_rss_mib,
            ),
            Line(
                f"memory point: wall, start-up subtracted, {args.memory_rows:,} rows (s)",
                _s(memory.seconds - fresh.seconds),
            ),
        ]
    return lines


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"nproc={cores()}, {cpu_model()}, {memory:.0f} GiB RAM, Python {platform.python_version()}"
    )


def notes(
    r: Results, args: argparse.Namespace, load: tuple[str, str]
) -> tuple[list[str], list[str]]:
    """The lines above the table (machine, parameters) and below it (how it was measured)."""
    first = r.reports.get("first", {})
    head = [
        f"machine: {machine()}; load average (1/5/15 min) before: {load[0]}, after: {load[1]}",
        f"parameters: rows={args.rows:,}, memory rows={args.memory_rows:,}, sandbox latency "
        f"{LATENCY_MS} ms per request in its own process (reset before every run), "
        f"{BATCH:,}-record batches, PENDO_MAX_REQUESTS_PER_SECOND=0 (no cap), warehouse PostgreSQL "
        f"`{SCHEMA}.visitors` (COPY-loaded, index on updated_at, VACUUM ANALYZE), seed {SEED}",
        "ours: `dagster asset materialize -m pendo_assets.definitions --select pendo/visitors "
        "--partition DAY`, a fresh DAGSTER_HOME (repo dagster.yaml, SQLite sync state in it) for "
        "the first sync and the memory point; the re-syncs reuse the first sync's home",
        "naive: `benchmarks/naive_metadata_loop.py URL DAY WAREHOUSE_URL`: pandas.read_sql, "
        "to_dict('records'), 1,000-record POSTs one after another over one httpx.Client"
        + (" (skipped in this run)" if args.skip_naive else ""),
    ]
    walls = "; ".join(
        f"{name} " + ", ".join(_s(run.seconds) for run in runs)
        for name, runs in r.startups.items()
        if runs
    )
    tail = [
        "start-up: each side's command on an empty partition (the day before), run "
        f"{args.startup_runs} times; the least wall and the least CPU are subtracted. Ours has "
        "two kinds: a fresh home (first sync, memory point) and a used home (re-syncs), since a "
        f"fresh instance also creates its storage. Start-up walls (s): {walls}.",
        "a net figure at or below 0 means the run's own work is within start-up noise: its goal "
        "is then undetermined, not met.",
        "CPU and peak RSS: each command runs under a wrapper (`bench_sync_cli.py --measure`) "
        "that makes itself a child subreaper (prctl), waits for the command and every "
        "descendant, and reads its RUSAGE_CHILDREN: CPU is user+sys of the whole process tree, "
        "peak RSS is ru_maxrss, the largest single process of the tree. The CLI process's own "
        f"figure (with the children it reaped itself): first sync "
        f"{_s(r.ours['first'].command_peak_rss_mib, 0)} MiB.",
        "requests of the first sync by method, path and status: ours "
        + _breakdown(r.ours["first"])
        + ("; naive " + _breakdown(r.naive["first"]) if "first" in r.naive else "")
        + ".",
        f"records the sandbox holds after the first sync: {r.held_after_first:,} "
        f"({r.held_how}); ours reported sent={first.get('sent')}, failed={first.get('failed')}, "
        f"requests={first.get('requests')}, "
        f"engine duration {first.get('duration_seconds')} s.",
        f"unchanged re-sync: sandbox request counter {r.unchanged_counter} (read cheaply: the "
        f"sandbox was reset before the run); ours reported "
        f"skipped_unchanged={r.reports.get('unchanged', {}).get('skipped_unchanged')}, "
        f"partition_fingerprint {r.reports.get('unchanged', {}).get('partition_fingerprint')!r} "
        "(the first sync's: "
        f"{r.reports.get('first', {}).get('partition_fingerprint')!r}).",
        f"1% changed: {r.changed_rows_in_sql:,} rows got seats + 1 in SQL (every "
        f"{CHANGED_EVERY}th id, updated_at kept); the sandbox, reset before the run, then held "
        f"{r.changed_records:,} visitors, "
        + (
            "exactly the changed ids with their new seats"
            if r.changed_ok
            else "NOT exactly the changed ids with their new seats"
        )
        + f"; ours reported sent={r.reports.get('changed', {}).get('sent')}, "
        f"partition_fingerprint {r.reports.get('changed', {}).get('partition_fingerprint')!r}.",
        f"sandbox peak RSS over the whole benchmark: {r.sandbox_peak_rss_mib:,.0f} MiB (it keeps "
        "every record until reset).",
        "one run of each on a shared machine: times move between runs (compare the load "
        "averages), request and record counts do not.",
    ]
    return head, tail


def _breakdown(run: Run) -> str:
    return ", ".join(f"{count:,} x `{key}`" for key, count in sorted(run.requests.items()))


def render(lines: list[Line], head: list[str], tail: list[str]) -> str:
    header = ["figure", "ours", "naive", "ratio ours/naive", "goal", "goal met"]
    rows = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---|---|"]
    rows += ["| " + " | ".join(line.cells()) + " |" for line in lines]
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return "\n".join(
        [
            "# CLI metadata benchmark",
            "",
            f"Generated by `benchmarks/bench_sync_cli.py` on {generated}.",
            "",
            *[f"- {note}" for note in head],
            "",
            *rows,
            "",
            *[f"- {note}" for note in tail],
            "",
        ]
    )


# -- entry point -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the measured day")
    parser.add_argument(
        "--memory-rows", type=int, default=3_000_000, help="rows of the memory point (0: skip)"
    )
    parser.add_argument("--skip-naive", action="store_true", help="run ours only")
    parser.add_argument(
        "--startup-runs", type=int, default=2, help="empty-partition runs per side (least wins)"
    )
    parser.add_argument("--warehouse-url", default=DEFAULT_WAREHOUSE, help="PostgreSQL URL")
    parser.add_argument(
        "--exact-count-limit",
        type=int,
        default=100_000,
        help="count the sandbox's records exactly up to this many rows (it copies them all)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    args = parser.parse_args(argv)
    if args.rows < CHANGED_EVERY or args.memory_rows < 0 or args.startup_runs < 1:
        parser.error(
            f"--rows must be at least {CHANGED_EVERY}, --memory-rows at least 0, "
            "--startup-runs at least 1"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain SIGTERM would skip the `finally` blocks that drop the schema and stop the sandbox.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    load_before = load_average()
    days = Days.before(datetime.now(UTC).date())
    started = time.perf_counter()
    with exclusive(args.warehouse_url):
        try:
            with tempfile.TemporaryDirectory(prefix="pendo-cli-bench-") as tmp:
                work = Path(tmp)
                print(f"loading {args.rows:,} + {args.memory_rows:,} rows into {SCHEMA}.visitors")
                create_schema(args.warehouse_url)
                load_day(args.warehouse_url, visitor_frame(args.rows, seed=SEED), days.day)
                if args.memory_rows:
                    memory_frame = visitor_frame(args.memory_rows, seed=MEMORY_SEED)
                    load_day(args.warehouse_url, memory_frame, days.memory)
                    del memory_frame
                finish_load(args.warehouse_url)
                if day_count(args.warehouse_url, days.day) != args.rows:
                    raise RuntimeError("the measured day does not hold --rows rows")
                write_syncs_file(work / "syncs.yaml", days)
                with sandbox_process(sandbox_config(LATENCY_MS), work) as sandbox:
                    print(f"sandbox at {sandbox.url}", flush=True)
                    results = run_scenarios(Bench(sandbox, work, args.warehouse_url), args, days)
        finally:
            try:
                drop_schema(args.warehouse_url)
            except psycopg.Error as exc:  # do not hide the error that brought us here
                print(f"warning: could not drop schema {SCHEMA}: {exc}", file=sys.stderr)
    head, tail = notes(results, args, (load_before, load_average()))
    tail.append(f"total benchmark time {time.perf_counter() - started:.0f} s.")
    text = render(table(results, args), head, tail)
    print()
    print(text)
    if not args.no_write:
        RESULTS_FILE.write_text(text)
        print(f"written to {RESULTS_FILE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"] and sys.argv[3:4] == ["--"]:
        sys.exit(measure_main(Path(sys.argv[2]), sys.argv[4:]))
    sys.exit(main())
