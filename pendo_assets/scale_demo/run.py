"""`make scale-demo`: backfills on Celery workers under one rate cap, measured at the sandbox.

It creates two fresh PostgreSQL databases (the Dagster instance of `deploy/dagster.yaml`; the
warehouse and the sync state), fills the warehouse, and starts the sandbox, Celery workers
and `dagster-daemon`, each as its own process, all on 127.0.0.1. It sets the `pendo_api`
pool, launches `dagster job backfill` of every day for the event sync and then the metadata
sync, waits for every run, and measures at the sandbox: each record exactly once, the busiest
second, pacing 429s and the rate all runs got through together. With `--kill-worker` it
SIGKILLs one worker mid-backfill, re-runs any partition left failed, and checks that every
record landed with no more duplicates than the in-doubt bound allows. Everything it started is
stopped and both databases are dropped, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType

import dagster as dg
import yaml

from pendo_assets.defs.executors import celery_worker_config
from pendo_assets.defs.run_overlap import PARTITION_TAG
from pendo_assets.sync.engine import DEFAULT_MAX_IN_FLIGHT

from .dagster_side import (
    StepExecution,
    failed_partitions,
    job_runs,
    reported_total,
    run_intervals,
    step_executions,
    wait_for_runs,
)
from .databases import DEFAULT_ADMIN_URL, fresh_database, with_driver
from .measure import (
    busiest_window,
    combined_rate,
    landing,
    loaded_destination,
    most_at_once,
    open_per_bucket,
    timeline,
)
from .processes import ManagedProcess, Processes, processes
from .report import ScaleReport, format_report, judge
from .sandbox_log import read_counters, read_sandbox
from .workload import Workload, fill_warehouse

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEPLOY_INSTANCE = REPO_ROOT / "deploy" / "dagster.yaml"
SYNCS_FILE = HERE / "scale_syncs.yaml"
EVENTS_SYNC, METADATA_SYNC = "scale_events", "scale_visitors"
JOBS = (f"{EVENTS_SYNC}_sync", f"{METADATA_SYNC}_sync")  # events first: see `_launch`
EVENTS_STEP = f"pendo__{EVENTS_SYNC}"
# Made-up credentials: the sandbox only checks that requests carry them.
INTEGRATION_KEY = "scale-demo-integration-key-5d1e"
TRACK_EVENT_SECRET = "scale-demo-track-secret-93bc"
DEFAULT_BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
DATABASES_FILE = "databases.txt"  # the demo's databases, one name a line
ARRIVALS_FILE = "arrivals.json"
IN_DOUBT_PER_KILLED_STEP = DEFAULT_MAX_IN_FLIGHT + 50  # README: in flight + unwritten acks


@dataclass(frozen=True)
class ScaleOptions:
    """The demo's knobs; the defaults meet the issue's numbers in a few minutes on 2 cores."""

    admin_url: str = DEFAULT_ADMIN_URL
    broker: str = DEFAULT_BROKER
    cap: float = 40.0
    days: int = 8
    visitors: int = 200
    events_per_day: int = 320
    workers: int = 2
    worker_concurrency: int = 5
    pool_limit: int = 10
    kill_worker: bool = False
    kill_at_share: float = 0.3  # kill once this share of the events has landed
    lease_ttl_seconds: float = 30.0
    latency_ms: float = 20.0
    timeout_seconds: float = 900.0


#: The sandbox runs at a higher CPU priority than everything else (where the system lets it):
#: Pendo has machines of its own, and a stand-in starved by ten runs on two cores would take
#: requests in bursts (arrival times bunched after a stall), which no sending side can prevent.
ABOVE_THE_REST = ("nice", "-n", "-10") if os.geteuid() == 0 else ()


def partition_days(today: date, count: int) -> list[date]:
    """The `count` complete UTC days before `today`, oldest first."""
    return [today - timedelta(days=n) for n in range(count, 0, -1)]


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _cli(env: Mapping[str, str], *args: str) -> str:
    """A `dagster` CLI command; its output, or an error carrying it."""
    done = subprocess.run(
        [_bin("dagster"), *args], env=dict(env), cwd=REPO_ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"dagster {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def _start_sandbox(group: Processes, workdir: Path, options: ScaleOptions) -> str:
    config = {
        "integration_key": INTEGRATION_KEY,
        "track_event_secret": TRACK_EVENT_SECRET,
        "fields": {"visitor": {"accountId": "string", "plan": "string", "synced_day": "string"}},
        "latency_ms": options.latency_ms,
        "request_log_limit": 1_000_000,
    }
    path = workdir / "sandbox.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [
        *ABOVE_THE_REST,
        *(sys.executable, "-m", "pendo_assets.sandbox", "--port", "0", "--config", str(path)),
    ]
    sandbox = group.start("sandbox", command, os.environ)
    return sandbox.wait_for(r"listening on (http://\S+)", timeout=30).group(1)


def _environment(
    home: Path, dagster_url: str, data_url: str, sandbox_url: str, queue: str, o: ScaleOptions
) -> dict[str, str]:
    """What every process of the deployment shares (as hosts would, through their config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PENDO_", "DAGSTER_"))}
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": dagster_url,
            "PENDO_EXECUTOR": "celery",
            "PENDO_CELERY_BROKER": o.broker,
            "PENDO_CELERY_BACKEND": "rpc://",
            "PENDO_CELERY_QUEUE": queue,
            "PENDO_BASE_URL": sandbox_url,
            "PENDO_INTEGRATION_KEY": INTEGRATION_KEY,
            "PENDO_TRACK_EVENT_SECRET": TRACK_EVENT_SECRET,
            "PENDO_SYNCS_FILE": str(SYNCS_FILE),
            "PENDO_WAREHOUSE_URL": data_url,
            "PENDO_STATE_URL": data_url,
            "PENDO_MAX_REQUESTS_PER_SECOND": f"{o.cap:g}",
            "PENDO_LEASE_TTL_SECONDS": f"{o.lease_ttl_seconds:g}",
            "PYTHONUNBUFFERED": "1",
            # `dagster-celery worker start` runs `celery` from the PATH: this environment's.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        }
    )
    return env


def _start_workers(
    group: Processes, workdir: Path, env: Mapping[str, str], queue: str, o: ScaleOptions
) -> dict[str, ManagedProcess]:
    """`dagster-celery worker start` per worker, on the demo's own queue of the broker."""
    config = workdir / "celery_worker.yaml"
    config.write_text(yaml.safe_dump(celery_worker_config(o.broker, "rpc://", queue)))
    workers: dict[str, ManagedProcess] = {}
    # Names of this demo's own: a worker killed by an earlier demo can leave its node's
    # exclusive queue (`<name>.celery.pidbox`) on the broker for a while.
    suffix = queue.rsplit("_", 1)[-1]
    for number in range(1, o.workers + 1):
        name = f"scale{number}-{suffix}"
        command = [
            _bin("dagster-celery"),
            *("worker", "start", "-A", "dagster_celery.app", "-y", str(config)),
            *("-q", queue, "-n", name, "-l", "INFO"),
            "--",
            f"--concurrency={o.worker_concurrency}",
        ]
        workers[name] = group.start(name, command, env)
    for name, worker in workers.items():
        worker.wait_for(rf"{name}@\S+ ready", timeout=120)
    return workers


def _launch(env: Mapping[str, str], days: list[str]) -> None:
    """One backfill per sync job, events first. deploy/dagster.yaml admits 10 runs at once and
    the demo sets the pool to 10 sync steps, so while the 8 event runs send, the short metadata
    runs pass through the other two run slots beside them without waiting for a pool slot, and
    the last requests are events: the cap stays busy from the first request to the last."""
    for job in JOBS:
        _cli(env, "job", "backfill", "-m", "pendo_assets.definitions", "-j", job,
             "--partitions", ",".join(days), "--noprompt")  # fmt: skip


@contextlib.contextmanager
def _environment_variable(name: str, value: str) -> Iterator[None]:
    """`name` set to `value` in this process for the block, as it was afterwards."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


class WorkerKiller:
    """Once a share of the events has landed, SIGKILLs the worker running the most event
    steps at that moment (a machine lost mid-step); remembers which and when."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        workers: Mapping[str, ManagedProcess],
        sandbox_url: str,
        events_to_wait: int,
    ) -> None:
        self.instance = instance
        self.workers = workers
        self.sandbox_url = sandbox_url
        self.events_to_wait = events_to_wait
        self.killed: str | None = None
        self.killed_at: float | None = None

    def __call__(self, records: list[dg.RunRecord]) -> None:
        if self.killed is not None:
            return
        if read_counters(self.sandbox_url)["events_stored"] < self.events_to_wait:
            return
        running = Counter(
            node(e.worker)
            for e in step_executions(self.instance, [r.dagster_run.run_id for r in records])
            if e.step_key == EVENTS_STEP and e.ended is None
        )
        busiest = next((name for name, _ in running.most_common() if name in self.workers), None)
        if busiest is None:
            return  # no event step is running on a worker right now: try again next tick
        self.workers[busiest].kill()
        self.killed, self.killed_at = busiest, time.time()
        print(
            f"killed Celery worker {busiest} (SIGKILL to its process group) while it ran "
            f"{running[busiest]} event steps",
            flush=True,
        )


def node(worker: str) -> str:
    """The worker's name without the host: `scale1-123@vm` is `scale1-123`."""
    return worker.split("@", 1)[0]


def _rerun_failed(
    instance: dg.DagsterInstance, env: Mapping[str, str], expected: int, o: ScaleOptions
) -> tuple[dict[str, list[str]], list[dg.RunRecord]]:
    """Backfill again every partition whose runs all failed; wait for those runs too."""
    records = job_runs(instance, JOBS)
    failed = failed_partitions(records)
    for job, partitions in failed.items():
        print(f"re-running {job} for {partitions}", flush=True)
        _cli(env, "job", "backfill", "-m", "pendo_assets.definitions", "-j", job,
             "--partitions", ",".join(partitions), "--noprompt")  # fmt: skip
    if failed:
        total = expected + sum(len(p) for p in failed.values())
        records = wait_for_runs(instance, JOBS, total, o.timeout_seconds)
    return failed, records


def _lost_steps(executions: list[StepExecution], killer: WorkerKiller | None) -> list[str]:
    """Steps that were running on the killed worker when it died."""
    if killer is None or killer.killed_at is None:
        return []
    at = killer.killed_at
    return sorted(
        f"{e.run_id[:8]}:{e.step_key}"
        for e in executions
        if node(e.worker) == killer.killed and e.started <= at and (e.ended is None or e.ended > at)
    )


def measure(
    report: ScaleReport,
    workload: Workload,
    sandbox_url: str,
    instance: dg.DagsterInstance,
    killer: WorkerKiller | None,
    workdir: Path,
) -> None:
    """Fill the report from the sandbox's log and the instance's records; keep the arrival
    times (per credential, sandbox clock) in `arrivals.json` for a closer look."""
    log = read_sandbox(sandbox_url)
    (workdir / ARRIVALS_FILE).write_text(json.dumps(log.arrivals_by_credential))
    busiest = busiest_window(log.arrivals)
    report.requests = len(log.arrivals)
    report.busiest_second, report.busiest_second_at = busiest.requests, busiest.starts_after_seconds
    report.busiest_second_by_credential = {
        credential: busiest_window(times).requests
        for credential, times in sorted(log.arrivals_by_credential.items())
    }
    report.rate_by_credential = {
        credential: combined_rate(times)
        for credential, times in sorted(log.arrivals_by_credential.items())
    }
    loaded = loaded_destination(log.arrivals_by_credential)
    if loaded is not None:
        report.loaded_destination = loaded
        report.combined_rate = report.rate_by_credential[loaded]
    report.rate_all_destinations = combined_rate(log.arrivals)
    report.sending_seconds = log.arrivals[-1] - log.arrivals[0] if log.arrivals else 0.0
    report.requests_per_5s = timeline(log.arrivals)
    report.pacing_429 = int(log.counters["pacing_429"])
    report.counters = log.counters
    report.events = vars(landing(workload.events, log.events))
    report.metadata = vars(landing(workload.metadata, log.metadata))

    records = job_runs(instance, JOBS)
    report.runs = len(records)
    report.run_statuses = dict(Counter(r.dagster_run.status.value for r in records))
    report.runs_at_once = most_at_once(run_intervals(records))
    report.partitions_succeeded = not failed_partitions(records) and len(
        {(r.dagster_run.job_name, r.dagster_run.tags.get(PARTITION_TAG)) for r in records}
    ) == len(JOBS) * len(report.days)
    executions = step_executions(instance, [r.dagster_run.run_id for r in records])
    report.steps_by_worker = dict(Counter(e.worker for e in executions))
    report.pendo_steps_at_once = most_at_once(
        [(e.started, e.ended) for e in executions if e.step_key.startswith("pendo__") and e.ended]
    )
    # Dagster stamps wall-clock time, the sandbox CLOCK_MONOTONIC, which every process of the
    # host shares: move step times onto the sandbox's clock to line them up with requests.
    to_monotonic = time.monotonic() - time.time()
    if log.arrivals:
        report.event_steps_per_5s = open_per_bucket(
            [
                (e.started + to_monotonic, (e.ended or e.started) + to_monotonic)
                for e in executions
                if e.step_key == EVENTS_STEP
            ],
            first=log.arrivals[0],
            buckets=len(report.requests_per_5s),
        )
    report.in_doubt_reported = reported_total(
        instance, dg.AssetKey(["pendo", EVENTS_SYNC]), "in_doubt"
    )
    if killer is not None:
        report.killed_worker = killer.killed
        report.steps_lost_with_worker = _lost_steps(executions, killer)
        lost_event_steps = sum(1 for s in report.steps_lost_with_worker if s.endswith(EVENTS_STEP))
        report.duplicate_bound = (
            report.in_doubt_reported + lost_event_steps * IN_DOUBT_PER_KILLED_STEP
        )


def run_scale_demo(options: ScaleOptions, workdir: Path, today: date | None = None) -> ScaleReport:
    """One full demo run in `workdir` (logs stay there); the report, judged."""
    started = time.monotonic()
    days = partition_days(today or datetime.now(UTC).date(), options.days)
    report = ScaleReport(
        mode="worker-kill" if options.kill_worker else "backfill",
        cap=options.cap,
        days=[d.isoformat() for d in days],
    )
    queue = f"pendo_scale_{os.getpid()}_{int(time.time())}"
    with contextlib.ExitStack() as stack:
        record = workdir / DATABASES_FILE
        dagster_db = stack.enter_context(
            fresh_database(options.admin_url, "pendo_scale_dagster", record)
        )
        data_db = stack.enter_context(fresh_database(options.admin_url, "pendo_scale_data", record))
        data_url = data_db.render_as_string(hide_password=False)
        dagster_url = with_driver(dagster_db, "postgresql+psycopg2").render_as_string(
            hide_password=False
        )
        workload = fill_warehouse(data_url, days, options.visitors, options.events_per_day)
        print(
            f"warehouse: {len(workload.metadata)} visitor rows and {len(workload.events)} events "
            f"over {len(days)} days, {options.visitors} visitors",
            flush=True,
        )
        home = workdir / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEPLOY_INSTANCE, home / "dagster.yaml")
        stack.enter_context(_environment_variable("DAGSTER_PG_URL", dagster_url))  # own instance
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        group = stack.enter_context(processes(workdir / "logs", REPO_ROOT))
        sandbox_url = _start_sandbox(group, workdir, options)
        env = _environment(home, dagster_url, data_url, sandbox_url, queue, options)
        _cli(env, "instance", "concurrency", "set", "pendo_api", str(options.pool_limit))
        workers = _start_workers(group, workdir, env, queue, options)
        daemon = group.start("daemon", [_bin("dagster-daemon"), "run", "-m",
                                        "pendo_assets.definitions"], env)  # fmt: skip
        print(
            f"sandbox {sandbox_url}; {len(workers)} Celery workers x {options.worker_concurrency}"
            f" on queue {queue}; dagster-daemon; pool pendo_api = {options.pool_limit}; cap "
            f"{options.cap:g}/s",
            flush=True,
        )
        _launch(env, report.days)
        expected = len(JOBS) * len(days)
        killer = (
            WorkerKiller(
                instance, workers, sandbox_url, int(len(workload.events) * options.kill_at_share)
            )
            if options.kill_worker
            else None
        )
        try:
            wait_for_runs(instance, JOBS, expected, options.timeout_seconds, on_tick=killer)
            if killer is not None:
                report.rerun_partitions, _ = _rerun_failed(instance, env, expected, options)
        finally:
            if not daemon.alive():
                print(f"dagster-daemon exited:\n{daemon.tail()}", file=sys.stderr)
        measure(report, workload, sandbox_url, instance, killer, workdir)
    report.wall_seconds = time.monotonic() - started
    judge(report)
    return report


def _parser() -> argparse.ArgumentParser:
    defaults = ScaleOptions()
    parser = argparse.ArgumentParser(
        prog="python -m pendo_assets.scale_demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--pg", default=defaults.admin_url, help="PostgreSQL to create the "
                        "demo's databases on (a database it can connect to)")  # fmt: skip
    parser.add_argument("--broker", default=defaults.broker, help="Celery broker URL")
    parser.add_argument("--cap", type=float, default=defaults.cap, help="requests/s cap")
    parser.add_argument("--days", type=int, default=defaults.days, help="daily partitions")
    parser.add_argument("--visitors", type=int, default=defaults.visitors)
    parser.add_argument("--events-per-day", type=int, default=defaults.events_per_day)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--worker-concurrency", type=int, default=defaults.worker_concurrency)
    parser.add_argument("--pool-limit", type=int, default=defaults.pool_limit)
    parser.add_argument("--kill-worker", action="store_true", help="SIGKILL a worker mid-way")
    parser.add_argument("--timeout", type=float, default=defaults.timeout_seconds)
    parser.add_argument("--workdir", help="keep logs here (default: a temporary directory)")
    parser.add_argument("--report", help="also write the report as JSON to this file")
    return parser


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so every process is stopped and both databases dropped."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    options = replace(
        ScaleOptions(),
        admin_url=args.pg,
        broker=args.broker,
        cap=args.cap,
        days=args.days,
        visitors=args.visitors,
        events_per_day=args.events_per_day,
        workers=args.workers,
        worker_concurrency=args.worker_concurrency,
        pool_limit=args.pool_limit,
        kill_worker=args.kill_worker,
        timeout_seconds=args.timeout,
    )
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = Path(args.workdir)
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pendo-scale-")))
        report = run_scale_demo(options, workdir)
        print(format_report(report), flush=True)
        if args.report:
            Path(args.report).write_text(json.dumps(report.as_dict(), indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
