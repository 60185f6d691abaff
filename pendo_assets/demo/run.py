"""`make demo` and `make dev`: the demo warehouse, the sandbox, and Dagster on a real instance.

`python -m pendo_assets.demo` builds the warehouse, starts the sandbox, materializes every sync
for the last three daily partitions through the `dagster` CLI under a local DAGSTER_HOME,
prints what each sync did, stops the sandbox, and exits non-zero if a run failed.
`python -m pendo_assets.demo --dev` starts the sandbox and `dagster dev` on the same data.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from pendo_assets.defs.environment import demo_warehouse_path, state_url
from pendo_assets.sandbox import SandboxConfig, SandboxServer
from pendo_assets.sync.record.failure_store import FailureStore
from pendo_assets.sync.spec import SyncsFile, load_syncs_file

from .summary import SummaryRow, format_summary, summary_rows
from .warehouse_data import build_demo_warehouse

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
SANDBOX_CONFIG = HERE.parent / "sandbox" / "demo_sandbox.yaml"
SYNCS_FILE = HERE / "demo_syncs.yaml"
PARTITIONS = 3


def last_partitions(today: date, count: int = PARTITIONS) -> list[str]:
    """The last `count` complete UTC days, oldest first."""
    return [(today - timedelta(days=n)).isoformat() for n in range(count, 0, -1)]


def prepare_home(home: Path) -> None:
    """A DAGSTER_HOME holding the project's dagster.yaml (telemetry off, the pendo_api pool)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")


def demo_environment(home: Path, sandbox: SandboxServer, config: SandboxConfig) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "PENDO_BASE_URL": sandbox.url,
            "PENDO_INTEGRATION_KEY": config.integration_key,
            "PENDO_TRACK_EVENT_SECRET": config.track_event_secret,
            "PENDO_SYNCS_FILE": str(SYNCS_FILE),
            "PENDO_WAREHOUSE_URL": f"sqlite:///{home / 'demo_warehouse.db'}",
            "PENDO_STATE_URL": f"sqlite:///{home / 'pendo_sync_state.db'}",
            "PENDO_MAX_REQUESTS_PER_SECOND": env.get("PENDO_MAX_REQUESTS_PER_SECOND", "300"),
        }
    )
    return env


def dagster(*args: str, env: Mapping[str, str]) -> int:
    """Run the venv's `dagster` CLI from the repository root; return its exit code."""
    command = [str(Path(sys.executable).parent / "dagster"), *args]
    return subprocess.run(command, env=dict(env), cwd=REPO_ROOT).returncode


def materialize(partition: str, syncs: SyncsFile, env: Mapping[str, str]) -> int:
    selection = ",".join(f"+pendo/{sync.name}" for sync in syncs.syncs)
    print(f"\n== materializing partition {partition}: {selection}", flush=True)
    return dagster(
        "asset",
        "materialize",
        "-m",
        "pendo_assets.definitions",
        "--select",
        selection,
        "--partition",
        partition,
        env=env,
    )


def run_demo(home: Path, today: date) -> int:
    prepare_home(home)
    os.environ["DAGSTER_HOME"] = str(home)
    # The sandbox starts empty every time, so the sync state from an earlier demo would be stale.
    (home / "pendo_sync_state.db").unlink(missing_ok=True)
    summary = build_demo_warehouse(
        f"sqlite:///{demo_warehouse_path()}", today=today, bad_rows_recent=True
    )
    print(summary.describe())
    syncs = load_syncs_file(SYNCS_FILE)
    partitions = last_partitions(today)
    config = SandboxConfig.from_yaml(SANDBOX_CONFIG)
    codes: dict[str, int] = {}
    with SandboxServer(config) as sandbox:
        print(f"Pendo sandbox listening at {sandbox.url}")
        env = demo_environment(home, sandbox, config)
        for partition in partitions:
            codes[partition] = materialize(partition, syncs, env)
        counters = sandbox.state(requests=False)["counters"]
    rows = summary_rows(dg.DagsterInstance.get(), syncs, partitions)
    print(format_summary(rows))
    _print_failures_hint(rows)
    print(f"Sandbox counters: {counters}")
    failed = [p for p, code in codes.items() if code != 0]
    if failed:
        print(f"Runs failed for partitions {failed}", file=sys.stderr)
        return 1
    missing = [r for r in rows if r.sent is None]
    if missing:
        print(
            f"No materialization recorded for {[(r.sync, r.partition) for r in missing]}",
            file=sys.stderr,
        )
        return 1
    return 0


def _print_failures_hint(rows: list[SummaryRow]) -> None:
    """Where the failed rows are, and a few of them, so a user sees what went wrong."""
    url = state_url()
    stored = FailureStore(sa.create_engine(url)).query()
    failed = sum(r.failed or 0 for r in rows)
    print(f"\n{failed} failed rows; all {len(stored)} are in table pendo_sync_failures at {url}:")
    for failure in stored[:12]:
        print(
            f"  {failure['sync_name']} {failure['partition_key']} id={failure['record_id']!r} "
            f"field={failure['field']!r}: {failure['reason'][:110]}"
        )
    if len(stored) > 12:
        print(f"  ... and {len(stored) - 12} more")


def run_dev(home: Path, today: date, port: int) -> int:
    prepare_home(home)
    os.environ["DAGSTER_HOME"] = str(home)
    if not demo_warehouse_path().exists():
        print(
            build_demo_warehouse(
                f"sqlite:///{demo_warehouse_path()}", today=today, bad_rows_recent=True
            ).describe()
        )
    config = SandboxConfig.from_yaml(SANDBOX_CONFIG)
    with SandboxServer(config) as sandbox:
        env = demo_environment(home, sandbox, config)
        print(f"Pendo sandbox at {sandbox.url} (state: {sandbox.url}/sandbox/state)")
        try:
            return dagster(
                "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port), env=env
            )
        except KeyboardInterrupt:
            return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=str(REPO_ROOT / ".dagster_home"), help="DAGSTER_HOME")
    parser.add_argument("--today", help="UTC date the demo data is relative to (default: today)")
    parser.add_argument("--dev", action="store_true", help="run `dagster dev` instead")
    parser.add_argument("--port", type=int, default=3000, help="dagster dev port")
    args = parser.parse_args(argv)
    today = date.fromisoformat(args.today) if args.today else datetime.now(UTC).date()
    home = Path(args.home).resolve()
    if args.dev:
        return run_dev(home, today, args.port)
    return run_demo(home, today)


if __name__ == "__main__":
    raise SystemExit(main())
