"""The state writer: senders hand over what Pendo accepted; one thread writes it, and a failed
write stops the sync with every row still accounted for."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from pendo_assets.client import PendoClient
from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.decide.record_keys import digest
from pendo_assets.sync.deliver.outcome import SyncAborted
from pendo_assets.sync.engine import SyncOptions, destination_of, run_sync
from pendo_assets.sync.record import state_writer
from pendo_assets.sync.record.state_store import Accepted, StateStore
from pendo_assets.sync.record.state_writer import StateWriter
from pendo_assets_tests.sync_specs import VISITORS

PARTITION = "2026-11-02"
HASH = digest("{}")  # a payload hash as the engine makes them


def test_everything_handed_over_is_written_by_close(state: StateStore) -> None:
    scope = state.scope("https://pendo.example#abc", "visitors")
    writer = StateWriter(scope, "run-1", None)

    for batch in range(30):
        writer.put(Accepted(f"v-{batch}-{i}", HASH, "{}") for i in range(100))

    assert writer.close() is None
    assert scope.count() == 3000
    assert scope.known(["v-29-99"]) == {"v-29-99": HASH}


def test_hand_overs_within_the_gathering_window_share_one_transaction(
    state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction's fixed cost is paid once for every hand-over that arrives while the first
    waits (here the window is long: only close ends it)."""
    monkeypatch.setattr(state_writer, "GATHER_SECONDS", 30.0)
    taken = threading.Event()

    class TellingQueue(queue.Queue):  # type: ignore[type-arg]
        def get(self, *args: Any, **kwargs: Any) -> Any:
            item = super().get(*args, **kwargs)
            taken.set()
            return item

    monkeypatch.setattr(state_writer.queue, "Queue", TellingQueue)
    scope = state.scope("https://pendo.example#abc", "visitors")
    writer = StateWriter(scope, "run-1", None)
    monkeypatch.undo()

    writer.put([Accepted("v-0", HASH, "{}")])
    assert taken.wait(timeout=30)  # the writer holds the first hand-over
    for batch in (1, 2):
        writer.put([Accepted(f"v-{batch}", HASH, "{}")])

    assert writer.close() is None
    assert scope.count() == 3
    assert _transactions(state) == 1


def test_a_transaction_takes_at_most_a_queue_of_hand_overs(
    state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However long the window, one transaction holds no more hand-overs than the queue does:
    the crash bound (README) counts them so."""
    monkeypatch.setattr(state_writer, "GATHER_SECONDS", 30.0)
    monkeypatch.setattr(state_writer, "QUEUED_BATCHES", 4)
    scope = state.scope("https://pendo.example#abc", "visitors")
    writer = StateWriter(scope, "run-1", None)

    for batch in range(8):
        writer.put([Accepted(f"v-{batch}", HASH, "{}")])

    assert writer.close() is None
    assert scope.count() == 8
    assert _transactions(state) == 2


def _transactions(state: StateStore) -> int:
    with state.engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM pendo_sync_writes").scalar())


def test_a_failed_write_is_reported_and_nothing_more_is_attempted(state: StateStore) -> None:
    scope = state.scope("https://pendo.example#abc", "visitors")
    with state.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE pendo_sync_records")
    writer = StateWriter(scope, "run-1", None)

    writer.put([Accepted("v-1", HASH, "{}")])
    error = writer.close()

    assert isinstance(error, sa.exc.OperationalError)
    assert (writer.problem() or "").startswith(
        "could not record accepted records in sync state: OperationalError: no such table"
    )


def test_a_sync_whose_state_writes_fail_stops_retryably_with_every_row_accounted(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    scope = state.scope(destination_of(VISITORS, client), "visitors")
    frames = [
        pd.DataFrame({"id": [f"v-{c}-{i}" for i in range(3)], "plan": ["pro"] * 3}, dtype=object)
        for c in range(3)
    ]

    with state.engine.begin() as connection:  # reads work, every write fails (disk full)
        connection.exec_driver_sql(
            "CREATE TRIGGER full BEFORE INSERT ON pendo_sync_records "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )

    with pytest.raises(SyncAborted) as aborted:
        run_sync(
            VISITORS,
            frames,
            client,
            partition_key=PARTITION,
            state=state,
            options=SyncOptions(max_in_flight=1),
        )

    report = aborted.value.report
    assert aborted.value.retryable
    assert "could not record accepted records in sync state" in str(aborted.value)
    assert report.rows == 9
    assert report.sent >= 3  # the first batch went out before its write failed
    assert report.sent + report.failed == 9
    assert all(f.reason.startswith("not sent: could not record") for f in report.failures)
    assert all(f.retryable for f in report.failures)
    assert scope.count() == 0
