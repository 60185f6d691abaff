"""One client shared by many threads, and the requests-per-second cap."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from pendo_assets.budget import HostBudget
from pendo_assets.client import MetadataRecord, PendoClient, TrackEvent
from pendo_assets.client.rate_limit import ThreadRateLimiter
from pendo_assets_tests.client_fixtures import FakeClock


def test_many_threads_share_one_client_without_losing_a_record(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    client = client_factory(batch_size=25)
    batches = [[MetadataRecord(f"v-{b}-{i}", {"seats": i}) for i in range(25)] for b in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [
            r
            for batch_results in pool.map(
                lambda batch: client.write_metadata_batch("visitor", batch, create=True), batches
            )
            for r in batch_results
        ]
    assert len(results) == 1000 and all(r.ok for r in results)
    assert len(sandbox.state(requests=False)["metadata"]["visitor"]) == 1000
    assert client.stats_snapshot().requests == 40


def test_events_of_different_visitors_go_out_concurrently(
    sandbox: Any, client: PendoClient
) -> None:
    events = [
        TrackEvent(event="e", visitor_id=f"v-{i}", timestamp=1_700_000_000_000 + i)
        for i in range(60)
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(client.send_track_event, events))
    assert all(r.ok for r in results)
    assert sorted(e["visitorId"] for e in sandbox.state()["events"]) == sorted(
        f"v-{i}" for i in range(60)
    )


def send(limiter: ThreadRateLimiter, clock: Callable[[], float], writing: float = 0.0) -> float:
    """One turn as the transport takes it: admitted, the request written, the turn released;
    returns when the write started."""
    release = limiter.acquire()
    started = clock()
    if writing:
        time.sleep(writing)
    release()
    return started


def sends(writes: list[float], per_second: float = 4) -> tuple[list[float], list[float]]:
    """Admission and write times (seconds after the first admission) of one send per entry of
    `writes`, each taking that long to write, through one limiter on a fake clock."""
    clock = FakeClock()
    limiter = ThreadRateLimiter(per_second, clock=clock, sleep=clock.sleep)
    start = clock()
    admitted, written = [], []
    for writing in writes:
        release = limiter.acquire()
        admitted.append(round(clock() - start, 9))
        clock.now += writing
        written.append(round(clock() - start, 9))
        release()
    return admitted, written


def test_sends_go_one_interval_apart() -> None:
    admitted, _ = sends([0.0] * 4)
    assert admitted == [0.0, 0.25, 0.5, 0.75]


def test_threads_keep_to_one_schedule() -> None:
    """Whatever the threads' order and delays, the k-th send goes no earlier than k intervals
    after the first: a lower bound that holds on a loaded machine too (sleeps never return
    early, and a late send moves no later slot earlier)."""
    limiter = ThreadRateLimiter(100, clock=time.monotonic, sleep=time.sleep)
    with ThreadPoolExecutor(max_workers=8) as pool:
        sent = sorted(pool.map(lambda _: send(limiter, time.monotonic), range(60)))
    assert all(at - sent[0] >= k / 100 - 1e-9 for k, at in enumerate(sent))


def test_a_send_late_on_its_slot_by_less_than_an_interval_keeps_the_schedule() -> None:
    """A sender that comes to its turn late (descheduled, a slow hand-over) does not move the
    turns after it: small delays do not add up to a lower rate."""
    clock = FakeClock()
    limiter = ThreadRateLimiter(4, clock=clock, sleep=clock.sleep)
    start = clock()
    admitted = []
    for arrives_at in [0.0, 0.4, 0.0, 0.0]:  # the second comes 0.15 s after its slot
        clock.now = max(clock.now, start + arrives_at)
        release = limiter.acquire()
        admitted.append(round(clock() - start, 9))
        release()
    assert admitted == [0.0, 0.4, 0.5, 0.75]


def test_a_stall_longer_than_an_interval_is_not_made_up() -> None:
    """The next send goes as the stalled write ends, then one interval apart again."""
    admitted, _ = sends([1.0, 0.0, 0.0, 0.0])
    assert admitted == [0.0, 1.0, 1.25, 1.5]


def test_no_window_of_a_second_holds_more_sends_than_the_cap() -> None:
    """Two sends written together after a slow write: the fifth waits until the first of the
    four before it was written 1.05 s earlier."""
    _, written = sends([0.5] + [0.0] * 8)
    assert written == [0.5, 0.5, 0.75, 1.0, 1.55, 1.8, 2.05, 2.3, 2.6]
    assert max(sum(1 for t in written if start <= t < start + 1.05) for start in written) == 4


def test_above_128_sends_a_second_the_window_holds_128_sends_to_their_share() -> None:
    """At a cap of 1,000 the guard keeps 128 writes: after a slow write at 0.3 s, the next
    127 go a millisecond apart and the 128th after it waits until 1.05 x 0.128 s later."""
    _, written = sends([0.3] + [0.0] * 128, per_second=1000)
    assert written[127] == 0.426
    assert written[128] == round(0.3 + 1.05 * 128 / 1000, 9)


def test_a_quick_write_does_not_delay_the_next_turn() -> None:
    """A write that ends before the next slot costs the rate nothing: the next send goes one
    interval after this one's slot, not one interval after its write."""
    sent, _ = sends([0.02] * 4)  # each write takes 0.02 s
    assert [round(b - a, 9) for a, b in itertools.pairwise(sent)] == [0.25] * 3


def test_the_first_send_after_a_quiet_spell_does_not_shorten_the_next_gap() -> None:
    clock = FakeClock()
    limiter = ThreadRateLimiter(4, clock=clock, sleep=clock.sleep)
    send(limiter, clock)
    clock.now += 10  # idle
    first = send(limiter, clock)
    second = send(limiter, clock)
    assert round(second - first, 9) == 0.25


def test_no_cap_means_no_waiting() -> None:
    clock = FakeClock()
    limiter = ThreadRateLimiter(None, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        limiter.acquire()()
    assert clock.sleeps == []


def test_clients_sharing_a_host_budget_keep_one_cap_between_them(
    sandbox: Any, client_factory: Callable[..., PendoClient], tmp_path: Any
) -> None:
    """What sync steps in separate processes (separate clients and budgets) rely on."""
    clients = [
        client_factory(
            max_requests_per_second=20,
            rate_budget=HostBudget(tmp_path / "budget"),
            clock=time.monotonic,
            sleep=time.sleep,
        )
        for _ in range(2)
    ]
    records = [[MetadataRecord(f"v-{c}-{i}", {}) for i in range(15)] for c in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(
            pool.map(
                lambda pair: [
                    pair[0].write_metadata_batch("visitor", [record], create=True)
                    for record in pair[1]
                ],
                zip(clients, records, strict=True),
            )
        )
    arrivals = sorted(r["received_at"] for r in sandbox.state(timings=True)["requests"])
    assert len(arrivals) == 30
    # Admission happens at least 1/20 s apart; arrival jitter on loopback is far below that,
    # so any 0.98 s holds at most 20 arrivals (two independent limiters would allow 40).
    assert max(sum(1 for t in arrivals if start <= t < start + 0.98) for start in arrivals) <= 20


def test_a_turn_ends_when_the_request_is_written_not_when_its_answer_comes(
    client_factory: Callable[..., PendoClient],
) -> None:
    """httpcore reports the written request through the `trace` extension; the next sender
    goes one interval after that, not after the (slow) answer."""
    written: list[float] = []

    def slow_pendo(request: httpx.Request) -> httpx.Response:
        request.extensions["trace"]("http11.send_request_body.complete", {})
        written.append(time.monotonic())
        time.sleep(0.5)  # a slow answer
        return httpx.Response(200, json=[])

    client = client_factory(
        max_requests_per_second=20,
        http_transport=httpx.MockTransport(slow_pendo),
        clock=time.monotonic,
        sleep=time.sleep,
    )
    event = TrackEvent(event="e", visitor_id="v", timestamp=1_700_000_000_000)
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda _: client.send_track_event(event), range(3)))
    gaps = [b - a for a, b in itertools.pairwise(sorted(written))]
    assert all(1 / 20 - 0.01 <= gap < 0.4 for gap in gaps), gaps
