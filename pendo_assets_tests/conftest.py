"""Shared fixtures: one local Pendo sandbox per test session, reset before each test."""

from __future__ import annotations

import getpass
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pendo_assets.sandbox import SandboxConfig, SandboxServer

# The client tests' fixtures (fake clock, clients aimed at the sandbox) live in their own module.
pytest_plugins = ["pendo_assets_tests.client_fixtures"]


@pytest.fixture(autouse=True)
def budget_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A host-wide Pendo budget directory of the test's own (subprocesses inherit it): a claim
    left by one test's killed process must not slow the next test down."""
    directory = tmp_path_factory.mktemp("budget")
    directory.chmod(0o700)
    monkeypatch.setenv("PENDO_BUDGET_DIR", str(directory))
    return directory


@pytest.fixture(scope="session")
def integration_key() -> str:
    """A made-up integration key (metadata endpoints)."""
    return "test-integration-key-7f3a91"


@pytest.fixture(scope="session")
def track_event_secret() -> str:
    """A made-up Track Event shared secret (``/data/track``)."""
    return "test-track-secret-c2e4b8"


@pytest.fixture(scope="session")
def sandbox_config(integration_key: str, track_event_secret: str) -> SandboxConfig:
    """The demo's fields, no latency, no random faults."""
    return SandboxConfig(
        integration_key=integration_key,
        track_event_secret=track_event_secret,
        fields={
            "visitor": {
                "plan": "string",
                "seats": "number",
                "is_trial": "boolean",
                "signup_date": "time",
            },
            "account": {"name": "string", "tier": "string", "arr": "number"},
        },
        agent_fields={"visitor": {"email": "string"}},
        latency_ms=0,
        fault_rate=0.0,
        max_batch=1000,
    )


@pytest.fixture(scope="session")
def sandbox_server(sandbox_config: SandboxConfig) -> Iterator[SandboxServer]:
    """One sandbox for the whole session; use ``sandbox`` to get it freshly reset."""
    with SandboxServer(sandbox_config) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The session's sandbox, reset: no metadata, events, counters, log, pacing or faults."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def sandbox_http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """A plain HTTP client pointed at the reset sandbox (no credentials set)."""
    # verify=False: plain HTTP on loopback, and loading CA certificates costs ~40 ms a client.
    with httpx.Client(base_url=sandbox.url, timeout=10, verify=False) as client:
        yield client


# -- warehouses: the local PostgreSQL server and SQLite files ----------------------------------

_PG_HOST, _PG_PORT, _PG_DATABASE = "127.0.0.1", 5432, "test"


def _postgres_user() -> str | None:
    """The first of ``postgres`` and the OS user that can open the ``test`` database.

    Creates that database when the server answers but lacks it.
    """
    import psycopg

    for user in dict.fromkeys(["postgres", getpass.getuser()]):
        params = {"host": _PG_HOST, "port": _PG_PORT, "user": user, "connect_timeout": 3}
        try:
            psycopg.connect(dbname=_PG_DATABASE, **params).close()
            return user
        except psycopg.OperationalError as exc:
            if f'database "{_PG_DATABASE}" does not exist' not in str(exc):
                continue
        try:
            with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
                conn.execute(f"CREATE DATABASE {_PG_DATABASE}")
            return user
        except psycopg.Error:
            continue
    return None


def _start_postgres() -> str:
    """Start the local cluster once; what happened, for the skip or failure message."""
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*")) or ["?"]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`{' '.join(command)}` could not run: {exc}"
    for _ in range(30):
        if _postgres_user() is not None:
            break
        time.sleep(0.5)
    return f"`{' '.join(command)}` exited {done.returncode}: {(done.stderr or done.stdout).strip()}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A SQLAlchemy URL for the ``test`` database of the local PostgreSQL (trust auth).

    Starts the server once if it is down. If it still cannot be reached the test is skipped,
    loudly, except under CI=true where it fails: CI must never skip the PostgreSQL tests.
    """
    user = _postgres_user()
    attempt = ""
    if user is None:
        attempt = _start_postgres()
        user = _postgres_user()
    if user is None:
        reason = (
            f"PostgreSQL NOT REACHABLE at {_PG_HOST}:{_PG_PORT}/{_PG_DATABASE} as postgres or "
            f"the OS user ({attempt}); the PostgreSQL warehouse tests did NOT run"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return f"postgresql+psycopg://{user}@{_PG_HOST}:{_PG_PORT}/{_PG_DATABASE}"


def require_duckdb() -> None:
    """Skip, loudly, when DuckDB support is not installed; under CI=true fail instead: CI
    installs it (the `dev` extra) and must never skip the DuckDB tests."""
    import importlib.util

    if importlib.util.find_spec("duckdb_engine") is not None:
        return
    reason = "duckdb-engine NOT INSTALLED (pip install '.[duckdb]'); the DuckDB tests did NOT run"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A fresh, uniquely named schema in the test database, dropped (CASCADE) afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.schema.CreateSchema(name))
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(sa.schema.DropSchema(name, cascade=True, if_exists=True))
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL for a new SQLite file (created on first connection)."""
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@dataclass
class WarehouseDb:
    """One test warehouse: ``engine`` is what the code under test reads with, ``writer`` sets up.

    The reader cannot write (a read-only SQLite URI, ``default_transaction_read_only`` on
    PostgreSQL), so every test also shows the warehouse code never writes. On PostgreSQL the
    reader's session time zone is America/New_York, so a test passes only if UTC days are used,
    and its search_path is the test's own schema, so tables need no schema prefix.
    """

    backend: str
    engine: Any
    writer: Any
    schema: str | None = None

    def create(self, name: str, *columns: Any, rows: Sequence[Mapping[str, Any]] = ()) -> Any:
        """Create table ``name`` with SQLAlchemy ``columns`` and insert ``rows``."""
        table = sa.Table(name, sa.MetaData(), *columns, schema=self.schema)
        table.create(self.writer)
        self.insert(table, rows)
        return table

    def insert(self, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            with self.writer.begin() as conn:
                conn.execute(table.insert(), [dict(row) for row in rows])

    def execute(self, sql: str) -> None:
        """Run setup SQL as the writer (in the test's schema on PostgreSQL)."""
        with self.writer.begin() as conn:
            if self.schema:
                conn.exec_driver_sql(f"SET LOCAL search_path TO {self.schema}")
            conn.exec_driver_sql(sql)


def _postgres_reader(postgres_url: str, schema: str | None, **options: str) -> Any:
    """An engine on the test database with New York session time and ``-c`` ``options``."""
    settings = {"timezone": "America/New_York", **options}
    if schema:
        settings.setdefault("search_path", schema)
    flags = " ".join(f"-c {key}={value}" for key, value in settings.items())
    return sa.create_engine(postgres_url, connect_args={"options": flags})


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Any]:
    """A sync state store (``StateStore``) in a SQLite file of the test's own; modules that
    need another define their own ``state``."""
    from pendo_assets.sync.record.state_store import StateStore, state_engine

    engine = state_engine(f"sqlite:///{tmp_path / 'state.db'}")
    yield StateStore(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_on_each_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A sync state store (``StateStore``) on SQLite, or on PostgreSQL in a schema of its own."""
    from pendo_assets.sync.record.state_store import StateStore
    from pendo_assets_tests.state_databases import state_engine_for

    engine = state_engine_for(request, tmp_path)
    yield StateStore(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_db(request: pytest.FixtureRequest) -> Iterator[WarehouseDb]:
    """The same warehouse test on SQLite and on PostgreSQL (see ``WarehouseDb``)."""
    if request.param == "sqlite":
        writer = sa.create_engine(request.getfixturevalue("sqlite_url"))
        with writer.connect():  # creates the file, so the read-only reader can open it
            pass
        reader = sa.create_engine(f"sqlite:///file:{writer.url.database}?mode=ro&uri=true")
        db = WarehouseDb("sqlite", reader, writer)
    else:
        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("pg_schema")
        reader = _postgres_reader(url, schema, default_transaction_read_only="on")
        db = WarehouseDb("postgres", reader, sa.create_engine(url), schema)
    try:
        yield db
    finally:
        db.engine.dispose()
        db.writer.dispose()


# -- the Dagster layer: sync assets over a test warehouse, the demo sandbox, DAGSTER_HOME -------

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_SANDBOX_FILE = REPO_ROOT / "pendo_assets" / "sandbox" / "demo_sandbox.yaml"
DEMO_SYNCS_FILE = REPO_ROOT / "pendo_assets" / "demo" / "demo_syncs.yaml"


@pytest.fixture(scope="session")
def sync_day() -> Any:
    """The day (a ``date``) the Dagster tests sync: two UTC days ago, so its partition exists
    and its events are inside Pendo's 7-day processing window."""
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC).date() - timedelta(days=2)


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL for a new SQLite sync-state database (``pendo_sync_failures``)."""
    return f"sqlite:///{tmp_path / 'sync_state.db'}"


@pytest.fixture
def sync_resources(
    sandbox: SandboxServer,
    integration_key: str,
    track_event_secret: str,
    sqlite_url: str,
    state_url: str,
) -> Any:
    """Builds the resources of the sync assets: ``pendo`` aimed at the reset sandbox with both
    credentials, the ``sqlite_url`` warehouse and the ``state_url`` state database.

    Keyword arguments replace PendoResource fields; ``warehouse_url`` replaces the warehouse.
    """
    from pendo_assets.defs.database_resources import SyncStateResource, WarehouseResource
    from pendo_assets.defs.resources import PendoResource

    def make(warehouse_url: str | None = None, **pendo_fields: Any) -> dict[str, Any]:
        fields = {
            "base_url": sandbox.url,
            "integration_key": integration_key,
            "track_event_secret": track_event_secret,
            **pendo_fields,
        }
        return {
            "pendo": PendoResource(**fields),
            "warehouse": WarehouseResource(url=warehouse_url or sqlite_url),
            "sync_state": SyncStateResource(url=state_url),
        }

    return make


@dataclass
class SyncMaterialization:
    """One ``dagster.materialize`` of a sync's two assets for one partition."""

    spec: Any  # SyncSpec
    partition_key: str
    result: Any  # dagster.ExecuteInProcessResult

    @property
    def run_id(self) -> str:
        return self.result.run_id

    def materialized(self, prefix: str) -> bool:
        """Whether ``<prefix>/<sync name>`` was materialized (prefix: warehouse or pendo)."""
        return bool(self.result.asset_materializations_for_node(self._node(prefix)))

    def metadata(self, prefix: str = "pendo") -> dict[str, Any]:
        """The materialization metadata of ``<prefix>/<sync name>`` as plain values."""
        [materialization] = self.result.asset_materializations_for_node(self._node(prefix))
        assert materialization.partition == self.partition_key
        return {key: value.value for key, value in materialization.metadata.items()}

    def check(self, name: str) -> Any:
        """The one evaluation of the asset check ``name`` (an AssetCheckEvaluation)."""
        evaluations = self.result.get_asset_check_evaluations()
        [evaluation] = [e for e in evaluations if e.check_name == name]
        return evaluation

    def step_failure(self, prefix: str) -> Any:
        """The failure data of the ``<prefix>/<sync name>`` step; its ``user_failure_data``
        holds the Failure's description and metadata."""
        node = self._node(prefix)
        [event] = [e for e in self.result.get_step_failure_events() if e.step_key == node]
        return event.step_failure_data

    def _node(self, prefix: str) -> str:
        return f"{prefix}__{self.spec.name}"


@pytest.fixture
def materialize_sync(sync_resources: Any) -> Any:
    """``materialize_sync(spec, day, resources=None, **pendo_fields)``: both assets of the sync
    for one day's partition through ``dagster.materialize``; a failed run is returned, not
    raised."""
    from datetime import timedelta

    import dagster as dg

    from pendo_assets.defs.factory import daily_partitions
    from pendo_assets.defs.sync_assets import build_sync_assets

    def materialize(
        spec: Any, day: Any, *, resources: Mapping[str, Any] | None = None, **pendo_fields: Any
    ) -> SyncMaterialization:
        assets = build_sync_assets(spec, daily_partitions(day - timedelta(days=10)))
        result = dg.materialize(
            assets,
            resources=resources or sync_resources(**pendo_fields),
            partition_key=day.isoformat(),
            raise_on_error=False,
        )
        return SyncMaterialization(spec, day.isoformat(), result)

    return materialize


@pytest.fixture
def stored_failures(state_url: str) -> Any:
    """Reads ``pendo_sync_failures`` at ``state_url``: dicts, oldest first, filtered by the
    keyword arguments (``sync_name``, ``partition_key``, ``run_id``)."""
    from pendo_assets.sync.record.failure_store import FailureStore

    def read(**filters: Any) -> list[dict[str, Any]]:
        engine = sa.create_engine(state_url, poolclass=sa.NullPool)
        try:
            return FailureStore(engine).query(**filters)
        finally:
            engine.dispose()

    return read


@pytest.fixture(scope="session")
def demo_sandbox_server() -> Iterator[SandboxServer]:
    """A sandbox with the demo's config (its fields fit the demo syncs file), for the session."""
    with SandboxServer(SandboxConfig.from_yaml(DEMO_SANDBOX_FILE)) as server:
        yield server


@dataclass
class DemoLocation:
    """A DAGSTER_HOME (with the repo's dagster.yaml) holding a small demo warehouse, and the
    environment that points ``pendo_assets.definitions`` at it and at the demo sandbox."""

    home: Path
    warehouse_url: str
    state_url: str
    env: dict[str, str]
    summary: Any  # DemoWarehouseSummary


@pytest.fixture(scope="session")
def make_demo_location(demo_sandbox_server: SandboxServer) -> Any:
    """``make_demo_location(home)``: the repo's dagster.yaml and a small demo warehouse (50
    visitors, 10 accounts, 100 events over the 7 UTC days before today) in ``home``, the demo
    syncs file, and the demo sandbox, reset."""
    import shutil
    from datetime import UTC, datetime

    from pendo_assets.demo.warehouse_data import build_demo_warehouse

    def make(home: Path) -> DemoLocation:
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
        warehouse_url = f"sqlite:///{home / 'demo_warehouse.db'}"
        state = f"sqlite:///{home / 'pendo_sync_state.db'}"
        summary = build_demo_warehouse(
            warehouse_url, today=datetime.now(UTC).date(), visitors=50, accounts=10, events=100
        )
        sandbox = demo_sandbox_server
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PENDO_", "DAGSTER_"))}
        env.update(
            {
                "DAGSTER_HOME": str(home),
                "PENDO_REGION": "us",
                "PENDO_BASE_URL": sandbox.url,
                "PENDO_INTEGRATION_KEY": sandbox.config.integration_key,
                "PENDO_TRACK_EVENT_SECRET": sandbox.config.track_event_secret,
                "PENDO_SYNCS_FILE": str(DEMO_SYNCS_FILE),
                "PENDO_WAREHOUSE_URL": warehouse_url,
                "PENDO_STATE_URL": state,
                "PENDO_MAX_REQUESTS_PER_SECOND": "500",
            }
        )
        sandbox.reset()
        return DemoLocation(home, warehouse_url, state, env, summary)

    return make


@pytest.fixture(scope="module")
def start_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``start_process(name, command, env)``: a process in its own session, output in a log
    file (``.log`` attribute); every one is stopped when the module's tests are done."""
    import contextlib
    import signal

    logs = tmp_path_factory.mktemp("processes")
    started: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(name: str, command: Sequence[str], env: Mapping[str, str]) -> Any:
        log = (logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.log = logs / f"{name}.log"  # type: ignore[attr-defined]
        started.append((process, log))
        return process

    yield start
    for process, log in reversed(started):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: only what we started
                process.wait(30)
        with contextlib.suppress(ProcessLookupError):  # children it left behind, if any
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
