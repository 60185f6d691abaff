"""Chunks share one pool of senders: a chunk's first requests go out while the chunk ahead of
it still waits for answers, and a chunk started while the one ahead stops sends nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pandas as pd
import pytest

from pendo_assets.client import PendoClient
from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.deliver.outcome import SyncAborted
from pendo_assets.sync.engine import SyncOptions, run_sync
from pendo_assets.sync.record.state_store import StateStore
from pendo_assets.sync.source.warehouse import PartitionStream
from pendo_assets_tests.sync_specs import EVENTS, VISITORS

PARTITION = "2026-11-02"
WAIT_SECONDS = 10.0


class HoldingTransport(httpx.BaseTransport):
    """Real HTTP to the sandbox, except that the request for ``held`` waits until a request for
    one of ``until`` has gone out (at most ``WAIT_SECONDS``)."""

    def __init__(self, held: str, until: set[str]) -> None:
        self._http = httpx.HTTPTransport()
        self._held, self._until = held, until
        self.released_in_time: bool | None = None  # False: the hold timed out
        self._release = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        ids = [record["visitorId"] for record in json.loads(request.read())]
        if self._until.intersection(ids):
            self._release.set()
        if self._held in ids:
            self.released_in_time = self._release.wait(WAIT_SECONDS)
        return self._http.handle_request(request)

    def close(self) -> None:
        self._http.close()


def _two_chunks() -> PartitionStream:
    """v-1, v-2 in the first chunk, v-3, v-4 in the second, as a warehouse read streams them."""
    chunks = [["v-1", "v-2"], ["v-3", "v-4"]]
    frames = [pd.DataFrame({"id": ids, "plan": ["pro"] * len(ids)}, dtype=object) for ids in chunks]
    return PartitionStream(lambda _check: iter(frames))


def test_a_chunks_first_request_goes_out_while_the_chunk_ahead_awaits_an_answer(
    sandbox: SandboxServer,
    client_factory: Callable[..., PendoClient],
    state: StateStore,
) -> None:
    transport = HoldingTransport(held="v-2", until={"v-3", "v-4"})
    client = client_factory(http_transport=transport, batch_size=1)

    report = run_sync(
        VISITORS,
        _two_chunks(),
        client,
        partition_key=PARTITION,
        state=state,
        options=SyncOptions(max_in_flight=2),
    )

    assert transport.released_in_time is True  # chunks drained one by one: False
    assert (report.rows, report.sent, report.failed) == (4, 4, 0)
    assert sorted(sandbox.state(requests=False)["metadata"]["visitor"]) == [
        "v-1",
        "v-2",
        "v-3",
        "v-4",
    ]


def test_a_chunk_started_while_the_chunk_ahead_stops_sends_nothing(
    sandbox: SandboxServer,
    client_factory: Callable[..., PendoClient],
    state: StateStore,
) -> None:
    # One request at a time: the first chunk's refused request stops it before its second,
    # and the second chunk starts before the first is accounted (the run not yet stopped).
    client = client_factory(integration_key="not-the-key", batch_size=1)

    with pytest.raises(SyncAborted) as raised:
        run_sync(
            VISITORS,
            _two_chunks(),
            client,
            partition_key=PARTITION,
            state=state,
            options=SyncOptions(max_in_flight=1),
        )

    report = raised.value.report
    assert sandbox.state()["counters"]["requests"] == 1
    assert (report.rows, report.sent) == (4, 0)
    assert report.failed + report.skipped == 4


def test_events_after_the_chunk_that_stopped_the_sync_are_not_sent(
    sandbox: SandboxServer, client_factory: Callable[..., PendoClient], state: StateStore
) -> None:
    # Events are sent to their end in the engine's thread: the stop is the run's before the
    # next chunk starts.
    client = client_factory(track_event_secret="not-the-secret")
    day_ms = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp() * 1000)
    chunks = [
        pd.DataFrame(
            {"visitor": [visitor], "name": ["Exported"], "at": [day_ms + i * 1000]}, dtype=object
        )
        for i, visitor in enumerate(["v-1", "v-2", "v-3"])
    ]

    with pytest.raises(SyncAborted) as raised:
        run_sync(
            EVENTS,
            chunks,
            client,
            partition_key=PARTITION,
            state=state,
            options=SyncOptions(max_in_flight=1, now_ms=day_ms + 86_400_000),
        )

    assert sandbox.state()["counters"]["requests"] == 1
    assert (raised.value.report.rows, raised.value.report.sent) == (3, 0)
