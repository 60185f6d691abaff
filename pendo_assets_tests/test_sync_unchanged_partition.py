"""A metadata partition left as a run found it is not read again: PostgreSQL fingerprints it.

Every test runs the real engine against a PostgreSQL warehouse (read-only, New York session
time) and the sandbox; the state is on SQLite and on PostgreSQL. Whether the rows were read is
seen by counting the batches the warehouse's row fetcher hands out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import pendo_assets.sync.source.fingerprint_alongside as alongside_module
import pendo_assets.sync.source.warehouse as warehouse_module
from pendo_assets.client import PendoClient
from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.decide.unchanged_partition import KEPT
from pendo_assets.sync.engine import SyncOptions, run_sync
from pendo_assets.sync.record.partition_fingerprints import change_count, keep_fingerprint
from pendo_assets.sync.record.state_store import AcceptedRows, StateStore
from pendo_assets.sync.results import SyncReport
from pendo_assets.sync.source.partition_fingerprint import PartitionFingerprint
from pendo_assets.sync.source.warehouse import FingerprintCheck, stream_partition
from pendo_assets.sync.spec import SourceSpec, SyncSpec

from .conftest import WarehouseDb, _postgres_reader

pytestmark = pytest.mark.postgres

DAY1, DAY2 = "2026-11-02", "2026-11-03"
START = datetime(2026, 11, 2, tzinfo=UTC)
VISITORS = SyncSpec(
    name="visitors",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={"id": "visitorId", "plan": "plan", "seats": "seats"},
)


VISITORS_ELSEWHERE = SyncSpec(  # another sync of the same rows: a state of its own
    name="visitors_elsewhere",
    object_type=VISITORS.object_type,
    source=VISITORS.source,
    mapping=VISITORS.mapping,
)


@pytest.fixture
def warehouse(postgres_url: str, pg_schema: str) -> Iterator[WarehouseDb]:
    """Table `visitors`: v-0..v-9 on DAY1 (plan "p<i>", seats i + 0.5)."""
    reader = _postgres_reader(postgres_url, pg_schema, default_transaction_read_only="on")
    db = WarehouseDb("postgres", reader, sa.create_engine(postgres_url), pg_schema)
    db.create(
        "visitors",
        sa.Column("id", sa.Text),
        sa.Column("plan", sa.Text),
        sa.Column("seats", sa.Numeric),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        rows=[
            {
                "id": f"v-{i}",
                "plan": f"p{i}",
                "seats": Decimal(i) + Decimal("0.5"),
                "updated_at": START + timedelta(hours=i),
            }
            for i in range(10)
        ],
    )
    yield db
    db.engine.dispose()
    db.writer.dispose()


@pytest.fixture
def state(state_on_each_backend: StateStore) -> StateStore:
    return state_on_each_backend


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per partition read (the rows themselves, not the fingerprint)."""
    seen: list[int] = []
    fetch = warehouse_module.fetch_batches

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.append(1)
        return fetch(*args, **kwargs)

    monkeypatch.setattr(warehouse_module, "fetch_batches", counted)
    return seen


def sync(
    warehouse: WarehouseDb,
    client: PendoClient,
    state: StateStore,
    *,
    spec: SyncSpec = VISITORS,
    day: str = DAY1,
    engine: sa.Engine | None = None,
    **options: Any,
) -> SyncReport:
    rows = stream_partition(  # the columns the push reads: the partition column is not one
        engine or warehouse.engine, spec.source, spec.mapped, day, group_by=spec.id_column
    )
    return run_sync(
        spec, rows, client, partition_key=day, state=state, options=SyncOptions(**options)
    )


def counts(report: SyncReport) -> tuple[int, int, int, int]:
    return report.rows, report.sent, report.skipped_unchanged, report.requests


def test_an_unchanged_partition_is_not_read_again(
    warehouse: WarehouseDb, client: PendoClient, state: StateStore, reads: list[int]
) -> None:
    first = sync(warehouse, client, state)
    second = sync(warehouse, client, state, run_id="second")

    assert counts(first) == (10, 10, 0, 1) and first.partition_fingerprint == KEPT
    assert counts(second) == (10, 0, 10, 0)
    assert (second.skipped, second.skipped_reasons) == (
        10,
        {"unchanged since Pendo last accepted it": 10},
    )
    assert second.partition_fingerprint == "unchanged since run local: rows not read"
    assert reads == [1]  # the first run only


def test_a_changed_row_is_read_and_exactly_it_is_sent(
    warehouse: WarehouseDb,
    sandbox: SandboxServer,
    client: PendoClient,
    state: StateStore,
    reads: list[int],
) -> None:
    sync(warehouse, client, state)
    warehouse.execute("UPDATE visitors SET plan = 'gold' WHERE id = 'v-3'")
    sandbox.reset()

    report = sync(warehouse, client, state)

    assert counts(report) == (10, 1, 9, 1) and reads == [1, 1]
    assert sandbox.state(requests=False)["metadata"]["visitor"]["v-3"]["custom"]["plan"] == "gold"
    assert report.partition_fingerprint == KEPT


def test_two_rows_of_one_id_trading_places_in_time_makes_the_later_one_sent(
    warehouse: WarehouseDb,
    sandbox: SandboxServer,
    client: PendoClient,
    state: StateStore,
    reads: list[int],
) -> None:
    """The rows read hold no partition column, yet its values pick the row of an id that
    wins: swapping them changes what is sent, so the fingerprint covers them too."""
    warehouse.execute(
        "INSERT INTO visitors VALUES ('v-3', 'gold', 3.5, TIMESTAMPTZ '2026-11-02 20:00Z')"
    )
    sync(warehouse, client, state)
    assert sandbox.state(requests=False)["metadata"]["visitor"]["v-3"]["custom"]["plan"] == "gold"
    warehouse.execute(
        "UPDATE visitors SET updated_at = CASE WHEN plan = 'gold' THEN TIMESTAMPTZ "
        "'2026-11-02 03:00Z' ELSE TIMESTAMPTZ '2026-11-02 20:00Z' END WHERE id = 'v-3'"
    )
    sandbox.reset()

    report = sync(warehouse, client, state)

    assert reads == [1, 1] and (report.rows, report.sent) == (11, 1)
    assert sandbox.state(requests=False)["metadata"]["visitor"]["v-3"]["custom"]["plan"] == "p3"


def test_a_number_written_with_another_scale_counts_as_changed(
    warehouse: WarehouseDb, client: PendoClient, state: StateStore, reads: list[int]
) -> None:
    """1.50 equals 1.5 as a value (a value hash would call them the same) but not as text."""
    sync(warehouse, client, state)
    warehouse.execute("UPDATE visitors SET seats = 3.50 WHERE id = 'v-3'")

    report = sync(warehouse, client, state)

    assert reads == [1, 1]
    assert report.partition_fingerprint == KEPT


@pytest.mark.parametrize(
    ("change", "rows"),
    [
        ("DELETE FROM visitors WHERE id = 'v-9'", 9),
        ("INSERT INTO visitors VALUES ('v-10', 'p10', 1, '2026-11-02T23:00:00Z')", 11),
        ("UPDATE visitors SET updated_at = '2026-11-03T01:00:00Z' WHERE id = 'v-0'", 9),
    ],
    ids=["row removed", "row added", "row moved to the next day"],
)
def test_a_row_added_to_or_gone_from_the_day_makes_it_read(
    warehouse: WarehouseDb,
    client: PendoClient,
    state: StateStore,
    reads: list[int],
    change: str,
    rows: int,
) -> None:
    sync(warehouse, client, state)
    warehouse.execute(change)

    report = sync(warehouse, client, state)

    assert reads == [1, 1]
    assert report.rows == rows == report.sent + report.skipped_unchanged


def test_another_partitions_run_that_sent_makes_the_partition_read_again(
    warehouse: WarehouseDb,
    sandbox: SandboxServer,
    client: PendoClient,
    state: StateStore,
    reads: list[int],
) -> None:
    """v-3's DAY2 row changed what the state holds for v-3: a re-sync of DAY1 sends DAY1's
    value again, as it would without fingerprints."""
    sync(warehouse, client, state)
    warehouse.execute("INSERT INTO visitors VALUES ('v-3', 'later', 1, '2026-11-03T05:00:00Z')")
    sync(warehouse, client, state, day=DAY2)
    sandbox.reset()

    report = sync(warehouse, client, state)

    assert reads == [1, 1, 1]
    assert counts(report) == (10, 1, 9, 1)
    assert sandbox.state(requests=False)["metadata"]["visitor"]["v-3"]["custom"]["plan"] == "p3"


def test_an_unchanged_run_of_another_partition_keeps_the_fingerprint_good(
    warehouse: WarehouseDb, client: PendoClient, state: StateStore, reads: list[int]
) -> None:
    warehouse.execute("INSERT INTO visitors VALUES ('v-20', 'x', 1, '2026-11-03T05:00:00Z')")
    sync(warehouse, client, state, day=DAY2)
    sync(warehouse, client, state)
    sync(warehouse, client, state, day=DAY2)  # read (DAY1's run wrote since), sends nothing

    report = sync(warehouse, client, state)

    assert reads == [1, 1, 1]  # not the last DAY1 run
    assert counts(report) == (10, 0, 10, 0)


def test_another_mapping_reads_the_partition(
    warehouse: WarehouseDb, client: PendoClient, state: StateStore, reads: list[int]
) -> None:
    sync(warehouse, client, state)
    remapped = SyncSpec(  # the same columns, read alike: only the mapping differs
        name=VISITORS.name,
        object_type=VISITORS.object_type,
        source=VISITORS.source,
        mapping={"id": "visitorId", "plan": "agent.email", "seats": "seats"},
    )

    report = sync(warehouse, client, state, spec=remapped)

    assert reads == [1, 1]
    assert report.sent == 10  # every payload changed: plan now goes out as the email


def test_another_session_time_zone_reads_the_partition(
    warehouse: WarehouseDb,
    client: PendoClient,
    state: StateStore,
    reads: list[int],
    postgres_url: str,
) -> None:
    """The session time zone shapes a timestamp's text and the value the driver gives us."""
    sync(warehouse, client, state)
    tokyo = _postgres_reader(postgres_url, warehouse.schema, timezone="Asia/Tokyo")
    try:
        report = sync(warehouse, client, state, engine=tokyo)
    finally:
        tokyo.dispose()

    assert reads == [1, 1]
    assert report.rows == 10


def test_a_run_with_a_failed_row_keeps_no_fingerprint(
    warehouse: WarehouseDb, client: PendoClient, state: StateStore, reads: list[int]
) -> None:
    warehouse.execute("INSERT INTO visitors VALUES (NULL, 'x', 1, '2026-11-02T23:00:00Z')")
    first = sync(warehouse, client, state)

    second = sync(warehouse, client, state)

    assert first.partition_fingerprint == "not kept: 1 row(s) failed"
    assert reads == [1, 1]
    assert (second.rows, second.failed, second.skipped_unchanged) == (11, 1, 10)


def test_update_mode_keeps_no_fingerprint_while_pendo_lacks_some_ids(
    warehouse: WarehouseDb, client: PendoClient, state: StateStore, reads: list[int]
) -> None:
    """Ids Pendo does not know are skipped, not recorded: a later run tries them again."""
    update = SyncSpec(
        name="visitor_updates",
        object_type=VISITORS.object_type,
        source=VISITORS.source,
        mapping=VISITORS.mapping,
        mode="update",
    )
    first = sync(warehouse, client, state, spec=update)
    sync(warehouse, client, state, spec=update)

    assert first.partition_fingerprint == "not kept: 10 row(s) not in Pendo"
    assert reads == [1, 1]


def test_a_full_refresh_reads_and_sends_every_row_then_keeps_the_fingerprint(
    warehouse: WarehouseDb, client: PendoClient, state: StateStore, reads: list[int]
) -> None:
    sync(warehouse, client, state)
    refresh = sync(warehouse, client, state, full_refresh=True)
    after = sync(warehouse, client, state)

    assert counts(refresh) == (10, 10, 0, 1) and refresh.partition_fingerprint == KEPT
    assert counts(after) == (10, 0, 10, 0)
    assert reads == [1, 1]


def test_a_dry_run_reads_the_rows_and_keeps_no_fingerprint(
    warehouse: WarehouseDb, client: PendoClient, state: StateStore, reads: list[int]
) -> None:
    sync(warehouse, client, state)
    warehouse.execute("UPDATE visitors SET plan = 'gold' WHERE id = 'v-3'")
    dry = sync(warehouse, client, state, dry_run=True)
    real = sync(warehouse, client, state)

    assert dry.partition_fingerprint is None and dry.dry_run is not None
    assert dry.dry_run.would_change == 1
    assert real.sent == 1
    assert reads == [1, 1, 1]


def test_a_sqlite_warehouse_is_read_as_always(
    sqlite_url: str, client: PendoClient, state: StateStore, reads: list[int]
) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE visitors (id TEXT, plan TEXT, seats REAL, updated_at TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO visitors VALUES ('v-1', 'a', 1.5, '2026-11-02T10:00:00Z')"
        )
    try:
        rows = [
            run_sync(
                VISITORS,
                stream_partition(engine, VISITORS.source, VISITORS.columns, DAY1, group_by="id"),
                client,
                partition_key=DAY1,
                state=state,
            )
            for _ in range(2)
        ]
    finally:
        engine.dispose()

    assert reads == [1, 1]
    assert [r.partition_fingerprint for r in rows] == [None, None]
    assert rows[1].skipped_unchanged == 1


def test_the_rows_read_are_the_rows_fingerprinted_when_a_row_lands_in_between(
    warehouse: WarehouseDb,
) -> None:
    """A row committed after the fingerprint and before the read is in neither: the two share
    one snapshot, so no row is sent that the kept fingerprint does not cover."""
    taken: list[PartitionFingerprint] = []

    def commit_a_row_then_read(fingerprint: PartitionFingerprint) -> bool:
        taken.append(fingerprint)
        warehouse.execute("INSERT INTO visitors VALUES ('v-late', 'x', 1, '2026-11-02T23:00:00Z')")
        return True

    rows = stream_partition(
        warehouse.engine, VISITORS.source, VISITORS.columns, DAY1, group_by="id"
    )
    rows.check_fingerprint(FingerprintCheck("seed", commit_a_row_then_read))
    read = [row for chunk in rows for row in chunk["id"]]

    assert [f.rows for f in taken] == [10]
    assert len(read) == 10 and "v-late" not in read


def test_a_fingerprint_taken_after_the_read_covers_the_rows_read_not_a_row_landed_meanwhile(
    warehouse: WarehouseDb,
) -> None:
    """A run that must read anyway (a first sync) fingerprints after reading, in the same
    snapshot: a row committed while it reads is in neither."""
    taken: list[PartitionFingerprint] = []
    rows = stream_partition(
        warehouse.engine, VISITORS.source, VISITORS.columns, DAY1, chunk_rows=3, group_by="id"
    )
    rows.check_fingerprint(FingerprintCheck("seed", lambda f: taken.append(f) or True, first=False))
    read: list[str] = []
    for chunk in rows:
        if not read:
            warehouse.execute(
                "INSERT INTO visitors VALUES ('v-late', 'x', 1, '2026-11-02T23:00:00Z')"
            )
        read += list(chunk["id"])

    assert [f.rows for f in taken] == [len(read)] == [10]
    assert taken[0].digest == _fingerprint_now(warehouse)


def _fingerprint_now(warehouse: WarehouseDb) -> str:
    """The partition's fingerprint as the table holds it now, less the late row."""
    warehouse.execute("DELETE FROM visitors WHERE id = 'v-late'")
    taken: list[PartitionFingerprint] = []
    rows = stream_partition(
        warehouse.engine, VISITORS.source, VISITORS.columns, DAY1, group_by="id"
    )
    rows.check_fingerprint(FingerprintCheck("seed", lambda f: taken.append(f) or False))
    assert list(rows) == []
    return taken[0].digest


def test_a_first_sync_reads_while_the_fingerprint_is_worked_out_alongside(
    warehouse: WarehouseDb, client: PendoClient, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing kept could match: the rows are read at once, and the fingerprint is worked out
    on a second connection meanwhile (here it waits for the read to hand out rows: a read that
    waited for it would make it wait in vain)."""
    rows_handed_out = threading.Event()
    waited: list[bool] = []
    fetch, take = warehouse_module.fetch_batches, alongside_module.partition_fingerprint

    def fetching(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for batch in fetch(*args, **kwargs):
            rows_handed_out.set()
            yield batch

    def fingerprinting(*args: Any, **kwargs: Any) -> Any:
        waited.append(rows_handed_out.wait(timeout=30))
        return take(*args, **kwargs)

    monkeypatch.setattr(warehouse_module, "fetch_batches", fetching)
    monkeypatch.setattr(alongside_module, "partition_fingerprint", fingerprinting)
    first = sync(warehouse, client, state)
    second = sync(warehouse, client, state)

    assert waited == [True]  # the second run asked before reading, on the reading connection
    assert first.partition_fingerprint == KEPT
    assert second.partition_fingerprint == "unchanged since run local: rows not read"


def test_the_fingerprint_alongside_sees_the_reads_snapshot_not_a_row_landed_before_it_ran(
    warehouse: WarehouseDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second connection imports the reading transaction's snapshot before anything else:
    a row committed after the read began, before the fingerprint's query, is in neither."""
    taken: list[PartitionFingerprint] = []
    take = alongside_module.partition_fingerprint

    def land_a_row_then_fingerprint(*args: Any, **kwargs: Any) -> Any:
        warehouse.execute("INSERT INTO visitors VALUES ('v-late', 'x', 1, '2026-11-02T23:00:00Z')")
        return take(*args, **kwargs)

    monkeypatch.setattr(alongside_module, "partition_fingerprint", land_a_row_then_fingerprint)
    rows = stream_partition(
        warehouse.engine, VISITORS.source, VISITORS.columns, DAY1, group_by="id"
    )
    rows.check_fingerprint(FingerprintCheck("seed", lambda f: taken.append(f) or True, first=False))
    read = [row for chunk in rows for row in chunk["id"]]
    monkeypatch.undo()

    assert len(read) == 10 and "v-late" not in read
    assert [f.rows for f in taken] == [10]
    assert taken[0].digest == _fingerprint_now(warehouse)


def test_an_abandoned_read_cancels_the_fingerprint_alongside_and_returns_its_connection(
    warehouse: WarehouseDb, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A sync that stops reading (a stop, a failure) does not wait out the fingerprint: its
    query is cancelled (quietly: no warning), its thread ends and its connection goes back to
    the pool."""
    outcome: list[str] = []
    started = threading.Event()
    take = alongside_module.partition_fingerprint

    def slow_fingerprint(conn: sa.Connection, *args: Any, **kwargs: Any) -> Any:
        started.set()
        try:
            conn.exec_driver_sql("SELECT pg_sleep(60)")
            outcome.append("slept")
        except sa.exc.DBAPIError as error:
            outcome.append(type(error.orig).__name__)
        # The transaction is aborted now: the real fingerprint fails, as a cancelled one does.
        return take(conn, *args, **kwargs)

    monkeypatch.setattr(alongside_module, "partition_fingerprint", slow_fingerprint)
    rows = stream_partition(
        warehouse.engine, VISITORS.source, VISITORS.columns, DAY1, chunk_rows=3, group_by="id"
    )
    rows.check_fingerprint(FingerprintCheck("seed", lambda f: True, first=False))
    chunks = iter(rows)
    first = next(chunks)
    assert started.wait(timeout=30)
    chunks.close()  # type: ignore[attr-defined]

    assert 0 < len(first) < 10  # the read stopped partway
    assert outcome == ["QueryCanceled"]
    assert "no partition fingerprint" not in caplog.text
    assert "pendo-fingerprint" not in {thread.name for thread in threading.enumerate()}
    assert warehouse.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_snapshot_the_server_will_not_export_leaves_the_fingerprint_after_the_read(
    warehouse: WarehouseDb,
    client: PendoClient,
    state: StateStore,
    reads: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused export aborts the reading transaction: it is rolled back, the rows are read
    in a new one, and the fingerprint is taken after them on the reading connection."""
    monkeypatch.setattr(alongside_module, "EXPORT_SNAPSHOT", "SELECT pg_no_such_export()")
    first = sync(warehouse, client, state)
    monkeypatch.undo()
    second = sync(warehouse, client, state)

    assert counts(first) == (10, 10, 0, 1)
    assert first.partition_fingerprint == KEPT
    assert second.partition_fingerprint == "unchanged since run local: rows not read"


def test_a_fingerprinting_connection_with_other_settings_keeps_no_fingerprint(
    warehouse: WarehouseDb,
    client: PendoClient,
    state: StateStore,
    reads: list[int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Values are spelled by session settings: a second connection whose settings are not the
    reading connection's would fingerprint other text, so its fingerprint is not used."""
    real = alongside_module.text_settings
    monkeypatch.setattr(alongside_module, "text_settings", lambda conn: ["Mars", *real(conn)[1:]])
    first = sync(warehouse, client, state)
    second = sync(warehouse, client, state)

    assert counts(first) == (10, 10, 0, 1) and first.partition_fingerprint is None
    assert reads == [1, 1] and counts(second) == (10, 0, 10, 0)
    assert "settings" in caplog.text and "'TimeZone': 'Mars'" in caplog.text


def test_a_fingerprint_the_warehouse_cannot_work_out_leaves_the_sync_as_it_was(
    warehouse: WarehouseDb,
    sandbox: SandboxServer,
    client: PendoClient,
    state: StateStore,
    reads: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fingerprint query fails in the database (here: a setting it does not know), before
    the read (a kept fingerprint could match) or after it (nothing kept); a savepoint keeps the
    read's transaction usable, and the rows are read and sent as always."""
    import pendo_assets.sync.source.partition_fingerprint as fingerprint_module

    sync(warehouse, client, state)  # keeps a fingerprint: the next run asks before reading
    monkeypatch.setattr(fingerprint_module, "TEXT_SETTINGS", ("no_such.setting",))
    warehouse.execute("UPDATE visitors SET plan = 'gold' WHERE id = 'v-3'")
    before = sync(warehouse, client, state)
    after = sync(warehouse, client, state, spec=VISITORS_ELSEWHERE)  # nothing kept: after

    assert counts(before) == (10, 1, 9, 1) and counts(after) == (10, 10, 0, 1)
    assert before.partition_fingerprint is None and after.partition_fingerprint is None
    assert reads == [1, 1, 1]
    assert sandbox.state(requests=False)["metadata"]["visitor"]["v-3"]["custom"]["plan"] == "gold"


def test_a_fingerprint_warning_never_shows_the_warehouse_password(
    warehouse: WarehouseDb,
    client: PendoClient,
    state: StateStore,
    postgres_url: str,
    pg_schema: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database's error can quote what it was given: here a setting named like the
    password (trust authentication lets any password in)."""
    import pendo_assets.sync.source.partition_fingerprint as fingerprint_module

    secret = "s3cret-pw"
    url = sa.make_url(postgres_url).set(password=secret).render_as_string(hide_password=False)
    engine = _postgres_reader(url, pg_schema, default_transaction_read_only="on")
    monkeypatch.setattr(fingerprint_module, "TEXT_SETTINGS", (secret,))
    try:
        report = sync(warehouse, client, state, engine=engine)
    finally:
        engine.dispose()

    assert report.partition_fingerprint is None
    assert 'unrecognized configuration parameter "***"' in caplog.text
    assert secret not in caplog.text


def test_a_fingerprint_is_not_kept_when_another_run_wrote_meanwhile(
    client: PendoClient, state: StateStore
) -> None:
    """Counted at the scope: the other run's write is not this run's own."""
    ours = state.scope("https://pendo.example|key", "visitors")
    theirs = state.scope("https://pendo.example|key", "visitors")
    since = change_count(ours)
    fingerprint = PartitionFingerprint(1, "0" * 32)
    ours.record("run-a", AcceptedRows(["v-1"], b"\x01" * 16, None, [0]))
    theirs.record("run-b", AcceptedRows(["v-2"], b"\x02" * 16, None, [0]))

    refused = keep_fingerprint(
        ours, DAY1, fingerprint, superseded=0, since=since, run_id="run-a", lease=None
    )
    kept = keep_fingerprint(
        ours,
        DAY1,
        fingerprint,
        superseded=0,
        since=change_count(ours),
        run_id="run-a",
        lease=None,
    )

    assert refused is not None and refused.startswith("1 state write(s) of another run")
    assert kept is None
