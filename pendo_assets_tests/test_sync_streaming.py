"""A partition streamed in chunks: last row wins across chunks, duplicates and pacing carry over,
a failure mid-stream accounts for every row read, and the source is read only a little ahead."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from pendo_assets.client import PendoClient
from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.decide.change_detection import DUPLICATE_EVENT
from pendo_assets.sync.deliver.outcome import SyncAborted
from pendo_assets.sync.engine import SyncOptions, run_sync
from pendo_assets.sync.prepare.metadata_rows import SUPERSEDED
from pendo_assets.sync.record.state_store import StateStore
from pendo_assets.sync.source.warehouse import WarehouseError, stream_partition
from pendo_assets_tests.sync_specs import EVENTS, VISITORS

from .conftest import WarehouseDb

PARTITION = "2026-11-02"
DAY = datetime(2026, 11, 2, tzinfo=UTC)
NOW_MS = int((DAY + timedelta(days=1)).timestamp() * 1000)


def _visitor_table(db: WarehouseDb, rows: list[tuple[str | None, str, int]]) -> None:
    db.create(
        "visitors",
        sa.Column("id", sa.Text),
        sa.Column("plan", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        rows=[
            {"id": i, "plan": plan, "updated_at": DAY + timedelta(hours=hour)}
            for i, plan, hour in rows
        ],
    )


def _stream(db: WarehouseDb, chunk_rows: int) -> list[list[dict[str, Any]]]:
    chunks = stream_partition(
        db.engine, VISITORS.source, ["id", "plan"], PARTITION, chunk_rows=chunk_rows, group_by="id"
    )
    return [chunk.to_dict("records") for chunk in chunks]


def test_chunks_never_split_the_rows_of_one_id_and_keep_them_in_time_order(
    warehouse_db: WarehouseDb,
) -> None:
    _visitor_table(
        warehouse_db,
        [("v-2", "late", 9), ("v-1", "b", 5), ("v-1", "a", 1), ("v-1", "c", 7), ("v-2", "x", 2)],
    )

    chunks = _stream(warehouse_db, chunk_rows=2)

    assert chunks == [
        [{"id": "v-1", "plan": "a"}, {"id": "v-1", "plan": "b"}, {"id": "v-1", "plan": "c"}],
        [{"id": "v-2", "plan": "x"}, {"id": "v-2", "plan": "late"}],
    ]


def test_every_row_is_read_once_with_rows_lacking_an_id_in_the_last_chunk(
    warehouse_db: WarehouseDb,
) -> None:
    rows = [(None, "n", 1), *[(f"v-{i:02}", "p", i % 20) for i in range(30)], (None, "m", 2)]
    _visitor_table(warehouse_db, rows)

    chunks = _stream(warehouse_db, chunk_rows=7)

    read = sorted(str(row["id"]) for chunk in chunks for row in chunk)
    assert read == sorted(["None", "None", *(f"v-{i:02}" for i in range(30))])
    assert [row["id"] for row in chunks[-1]].count(None) == 2
    assert max(len(chunk) for chunk in chunks) <= 7


def test_the_latest_row_of_an_id_wins_however_small_the_chunks(
    warehouse_db: WarehouseDb, sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    rows = [(f"v-{i}", f"old-{i}", 1) for i in range(6)]
    rows += [(f"v-{i}", f"new-{i}", 10) for i in range(6)]
    _visitor_table(warehouse_db, rows)
    chunks = stream_partition(
        warehouse_db.engine,
        VISITORS.source,
        VISITORS.mapped,  # as the push reads: no partition column, ordered by it in SQL
        PARTITION,
        chunk_rows=1,
        group_by="id",
    )

    report = run_sync(VISITORS, chunks, client, partition_key=PARTITION, state=state)

    stored = sandbox.state()["metadata"]["visitor"]
    assert {vid: stored[vid]["custom"]["plan"] for vid in stored} == {
        f"v-{i}": f"new-{i}" for i in range(6)
    }
    assert (report.rows, report.sent, report.skipped) == (12, 6, 6)
    assert report.skipped_reasons == {SUPERSEDED: 6}


def _events(visitors: list[str], second: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "visitor": visitors,
            "name": ["Exported"] * len(visitors),
            "at": [
                int((DAY + timedelta(seconds=second + i)).timestamp() * 1000)
                for i in range(len(visitors))
            ],
        },
        dtype=object,
    )


def test_an_event_repeated_in_a_later_chunk_is_skipped_as_a_duplicate(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    first = _events(["v-1", "v-2"])
    again = first.iloc[[1]]

    report = run_sync(
        EVENTS,
        [first, again],
        client,
        partition_key=PARTITION,
        state=state,
        options=SyncOptions(now_ms=NOW_MS),
    )

    assert len(sandbox.state()["events"]) == 2
    assert (report.rows, report.sent, report.skipped) == (3, 2, 1)
    assert report.skipped_reasons == {DUPLICATE_EVENT: 1}


def test_one_visitors_events_in_successive_chunks_keep_pendos_pace(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    chunks = [_events(["v-1"], second=i) for i in range(3)]

    report = run_sync(
        EVENTS, chunks, client, partition_key=PARTITION, state=state, options=SyncOptions()
    )

    assert report.sent == 3
    assert sandbox.state(requests=False)["counters"].get("pacing_429", 0) == 0
    assert report.retried == 0


def _failing_after(chunks: list[pd.DataFrame], error: Exception) -> Iterator[pd.DataFrame]:
    yield from chunks
    raise error


def test_a_warehouse_failure_mid_stream_accounts_for_every_row_read(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    first = pd.DataFrame({"id": ["v-1", "v-2"], "plan": ["pro", "pro"]}, dtype=object)
    rows = _failing_after([first], WarehouseError("connection lost"))

    with pytest.raises(SyncAborted) as aborted:
        run_sync(VISITORS, rows, client, partition_key=PARTITION, state=state)

    report = aborted.value.report
    assert (report.rows, report.sent, report.failed) == (2, 2, 0)
    assert aborted.value.retryable
    assert str(aborted.value) == (
        f"sync 'visitors' partition {PARTITION} stopped: cannot read the warehouse: "
        "connection lost (2 sent, 0 failed, 0 skipped of 2 rows)"
    )


def test_a_warehouse_that_fails_before_any_row_raises_its_own_error(
    client: PendoClient, state: StateStore
) -> None:
    with pytest.raises(WarehouseError, match="no such table"):
        run_sync(
            VISITORS,
            _failing_after([], WarehouseError("no such table")),
            client,
            partition_key=PARTITION,
            state=state,
        )


def test_an_internal_error_in_a_later_chunk_fails_that_chunk_and_the_rest_not_the_sent_ones(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    good = pd.DataFrame({"id": ["v-1"], "plan": ["pro"]}, dtype=object)
    broken = pd.DataFrame({"wrong": ["v-2"]}, dtype=object)  # no id column: a bug's shape
    rest = pd.DataFrame({"id": ["v-3"], "plan": ["pro"]}, dtype=object)

    with pytest.raises(SyncAborted) as aborted:
        run_sync(VISITORS, [good, broken, rest], client, partition_key=PARTITION, state=state)

    report = aborted.value.report
    assert (report.rows, report.sent, report.failed) == (3, 1, 2)
    assert [f.row for f in report.failures] == [1, 2]
    assert all(f.reason.startswith("internal error: KeyError") for f in report.failures)
    assert [f.record_id for f in report.failures] == [None, "v-3"]
    assert set(sandbox.state()["metadata"]["visitor"]) == {"v-1"}


def test_the_source_is_read_at_most_three_chunks_ahead_of_delivery(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    pulled: list[int] = []
    pulled_when_sent: list[int] = []

    def chunks() -> Iterator[pd.DataFrame]:
        for i in range(8):
            pulled.append(i)
            yield pd.DataFrame({"id": [f"v-{i}"], "plan": ["pro"]}, dtype=object)

    original = client.write_metadata_batch

    def spy(*args: Any, **kwargs: Any) -> Any:
        pulled_when_sent.append(len(pulled))
        return original(*args, **kwargs)

    client.write_metadata_batch = spy  # type: ignore[method-assign]

    report = run_sync(VISITORS, chunks(), client, partition_key=PARTITION, state=state)

    assert report.sent == 8
    # One chunk read ahead by the reader and one planned ahead by the planner, each handed
    # over through a queue of one, plus the one each thread holds while its queue is full.
    assert all(seen - sent <= 4 for sent, seen in enumerate(pulled_when_sent, start=1))
    assert max(seen - sent for sent, seen in enumerate(pulled_when_sent, start=1)) >= 3
