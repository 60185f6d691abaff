"""One Pendo budget per destination: the rate cap and visitor pacing shared by every process
(host-wide, for SQLite state) or every host (in PostgreSQL, for PostgreSQL state)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pendo_assets.budget import (
    HostBudget,
    PostgresBudget,
    budget_for_state,
    host_budget,
    postgres_budget,
)
from pendo_assets.budget.host_budget import HostRateLimiter
from pendo_assets.budget.postgres_budget import BudgetUnavailable
from pendo_assets.budget.private_directory import (
    UnsafeDirectoryError,
    private_directory,
    remove_stale_files,
)
from pendo_assets.budget.visitor_pacing import HELD_RETRY_SECONDS
from pendo_assets.client import MetadataRecord, PendoClient
from pendo_assets.client.rate_limit import ThreadRateLimiter
from pendo_assets_tests.client_fixtures import FakeClock

DESTINATION = "http://127.0.0.1:1#0123456789abcdef"


def busiest_second(stamps: list[float]) -> int:
    ordered = sorted(stamps)
    return max(sum(1 for t in ordered if start <= t < start + 1.0) for start in ordered)


@pytest.fixture(params=["host", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state database URL: SQLite (budget in the host's private directory) or PostgreSQL
    (budget in the database)."""
    if request.param == "host":
        return f"sqlite:///{tmp_path / 'state.db'}"
    schema = request.getfixturevalue("pg_schema")
    return f"{request.getfixturevalue('postgres_url')}?options=-csearch_path%3D{schema}"


@pytest.fixture
def open_budget(shared_state_url: str) -> Iterator[Callable[[], Any]]:
    """Opens budgets on the test's state database, as separate runs would; closes them."""
    opened: list[Any] = []

    def make() -> Any:
        budget = budget_for_state(shared_state_url)
        opened.append(budget)
        return budget

    yield make
    for budget in opened:
        budget.close()


def test_a_postgresql_state_database_keeps_the_budget_in_postgresql(
    open_budget: Callable[[], Any], shared_state_url: str
) -> None:
    expected = PostgresBudget if shared_state_url.startswith("postgresql") else HostBudget
    assert isinstance(open_budget(), expected)


def test_a_pause_holds_back_every_caller_of_the_limiter() -> None:
    clock = FakeClock()
    limiter = ThreadRateLimiter(None, clock=clock, sleep=clock.sleep)
    started = clock()
    limiter.pause(2.0)
    limiter.acquire()()
    assert clock() >= started + 2.0


def test_processes_sharing_a_budget_never_exceed_the_cap_together(shared_state_url: str) -> None:
    """Four processes, 25 sends each, one cap of 40 a second: as four runs on four workers."""
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pendo_assets_tests.budget_worker",
                shared_state_url,
                DESTINATION,
                "40",
                "25",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for _ in range(4)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    stamps = [float(line) for output in outputs for line in output.split()]
    assert len(stamps) == 100
    assert busiest_second(stamps) <= 42  # the cap, within 5%
    assert max(stamps) - min(stamps) >= 99 / 40 * 0.95  # 100 sends took the cap's time


def test_a_pause_by_one_run_holds_back_another_run(open_budget: Callable[[], Any]) -> None:
    first = open_budget().limiter(DESTINATION, 100)
    second = open_budget().limiter(DESTINATION, 100)
    first.acquire()()
    started = time.monotonic()
    first.pause(1.0)
    second.acquire()()
    assert time.monotonic() - started >= 0.9


def test_without_a_cap_senders_never_wait_for_one_another(open_budget: Callable[[], Any]) -> None:
    """No cap, no turn: a send still being written holds nobody back (a cap holds the next
    sender until then, so its slot is its own)."""
    limiter = open_budget().limiter(DESTINATION, None)
    other_run = open_budget().limiter(DESTINATION, None)
    writing = limiter.acquire()  # not yet released: its request is still being written
    admitted = threading.Event()
    sender = threading.Thread(target=lambda: (limiter.acquire()(), admitted.set()))
    sender.start()
    try:
        assert admitted.wait(5.0)
        other_run.acquire()()
    finally:
        writing()
        sender.join()


def test_without_a_cap_a_pause_by_another_run_still_holds_senders_back(
    open_budget: Callable[[], Any],
) -> None:
    limiter = open_budget().limiter(DESTINATION, None)
    pauser = open_budget().limiter(DESTINATION, None)
    limiter.acquire()()
    started = time.monotonic()
    pauser.pause(1.0)
    limiter.acquire()()
    assert time.monotonic() - started >= 0.9


def test_a_pause_holds_back_senders_already_waiting_for_their_slot(
    open_budget: Callable[[], Any],
) -> None:
    """Eight senders at a cap of 10 a second have booked slots up to 0.8 s ahead when another
    run pauses the destination for a second: none of them sends during the pause."""
    limiter = open_budget().limiter(DESTINATION, 10)
    pauser = open_budget().limiter(DESTINATION, 10)
    limiter.acquire()()
    admitted: list[float] = []

    def send() -> None:
        release = limiter.acquire()
        admitted.append(time.monotonic())
        release()

    senders = [threading.Thread(target=send) for _ in range(8)]
    for sender in senders:
        sender.start()
    time.sleep(0.25)  # every sender has booked its slot and sleeps towards it
    pauser.pause(1.0)
    paused = time.monotonic()  # the pause holds from here (the host's waits for its lock)
    for sender in senders:
        sender.join()
    assert [t for t in admitted if paused < t < paused + 0.98] == []
    assert len(admitted) == 8


def test_a_visitor_is_claimed_by_one_run_at_a_time(open_budget: Callable[[], Any]) -> None:
    first = open_budget().pacing(DESTINATION)
    second = open_budget().pacing(DESTINATION)
    assert first.claim("v-1") == 0.0
    assert second.claim("v-1") == HELD_RETRY_SECONDS  # in flight: ask again shortly
    assert second.claim("v-2") == 0.0  # other visitors are free


def test_a_released_visitor_is_free_again_after_the_gap(open_budget: Callable[[], Any]) -> None:
    first = open_budget().pacing(DESTINATION)
    second = open_budget().pacing(DESTINATION)
    first.claim("v-1")
    first.release("v-1", 0.5)
    wait = second.claim("v-1")
    assert 0.3 < wait <= 0.5
    time.sleep(wait + 0.02)
    assert second.claim("v-1") == 0.0


def test_the_claim_of_a_run_that_died_expires_after_the_hold(
    open_budget: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_budget, "CLAIM_HOLD_SECONDS", 0.3)
    monkeypatch.setattr(postgres_budget, "CLAIM_HOLD_SECONDS", 0.3)
    dead = open_budget().pacing(DESTINATION)
    assert dead.claim("v-1") == 0.0  # and never released
    time.sleep(0.35)
    assert open_budget().pacing(DESTINATION).claim("v-1") == 0.0


def test_destinations_have_budgets_of_their_own(open_budget: Callable[[], Any]) -> None:
    budget = open_budget()
    budget.limiter(DESTINATION, 100).pause(5.0)
    budget.pacing(DESTINATION).claim("v-1")
    started = time.monotonic()
    budget.limiter(DESTINATION + "-other", 100).acquire()()
    assert time.monotonic() - started < 1.0
    assert budget.pacing(DESTINATION + "-other").claim("v-1") == 0.0


def test_a_429_with_retry_after_pauses_every_sender_to_that_destination(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    """Six senders, spaced 0.1 s apart by the cap; the first is refused with Retry-After: 1.
    Without a shared pause the five others would arrive within half a second of the refusal."""
    client = client_factory(
        batch_size=1, max_requests_per_second=10, clock=time.monotonic, sleep=time.sleep
    )
    sandbox.script_faults([{"status": 429, "retry_after": "1"}])
    threads = [
        threading.Thread(
            target=client.write_metadata_batch,
            args=("visitor", [MetadataRecord(f"v-{i}", {})]),
            kwargs={"create": True},
        )
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused, *accepted = sorted(r["received_at"] for r in sandbox.state(timings=True)["requests"])
    assert len(accepted) == 6
    assert min(accepted) - refused >= 0.95


def test_the_budget_directory_must_be_ours_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafeDirectoryError, match="0700"):
        private_directory(shared)


def test_files_of_destinations_idle_for_a_week_are_removed(tmp_path: Path) -> None:
    directory = private_directory(tmp_path / "budget")
    stale, fresh = directory / "rate-old", directory / "rate-new"
    stale.write_text("1.0")
    fresh.write_text("1.0")
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(stale, (week_ago, week_ago))
    assert remove_stale_files(directory) == 1
    assert sorted(p.name for p in directory.iterdir()) == ["rate-new"]


@pytest.mark.parametrize("cap", [10, None], ids=["capped", "no cap"])
def test_a_rate_file_written_before_a_reboot_does_not_stall_sends(
    tmp_path: Path, cap: float | None
) -> None:
    directory = tmp_path / "budget"
    before_reboot = HostRateLimiter(
        HostBudget(directory).limiter(DESTINATION, 10).path,
        10,
        clock=lambda: time.monotonic() + 10_000_000,  # a previous boot's uptime
    )
    before_reboot.acquire()()
    before_reboot.pause(60.0)

    def no_stall(seconds: float) -> None:
        assert seconds < 1.0, f"the send waited {seconds:.0f} s for a previous boot's turn"

    limiter = HostRateLimiter(before_reboot.path, cap, sleep=no_stall)
    limiter.acquire()()


def test_a_high_cap_keeps_the_rate_file_small(tmp_path: Path) -> None:
    """Every send reads and writes the file: its window stays at 128 writes, whatever the cap."""
    limiter = HostBudget(tmp_path / "budget").limiter(DESTINATION, 100_000)
    for _ in range(300):
        limiter.acquire()()
    assert limiter.path.stat().st_size < 1100  # 129 times of 8 bytes and a header


def test_a_rate_file_of_the_release_before_does_not_stall_sends(tmp_path: Path) -> None:
    limiter = HostBudget(tmp_path / "budget").limiter(DESTINATION, 10)
    limiter.path.write_text(repr(time.monotonic() + 200).ljust(32))  # its next time, as text
    started = time.monotonic()
    for _ in range(3):
        limiter.acquire()()
    assert time.monotonic() - started < 1.0


def test_sends_after_a_slow_write_never_put_more_than_the_cap_into_a_second(
    open_budget: Callable[[], Any],
) -> None:
    """A write held up past the next slots lets the next send go as it ends, but no second
    ever holds more than the cap's sends, in any of the budgets."""
    limiter = open_budget().limiter(DESTINATION, 10)
    written = []
    for holding in [0.35] + [0.0] * 11:
        release = limiter.acquire()
        time.sleep(holding)
        written.append(time.monotonic())
        release()
    assert max(sum(1 for t in written if start <= t < start + 1.0) for start in written) <= 10
    assert written[1] - written[0] < 0.05  # no wait after the stall: without the guard, 11


@pytest.mark.postgres
def test_a_rate_table_of_the_release_before_gains_the_window_column(
    postgres_url: str, pg_schema: str
) -> None:
    import sqlalchemy as sa

    url = f"{postgres_url}?options=-csearch_path%3D{pg_schema}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE UNLOGGED TABLE pendo_rate_budget (destination TEXT PRIMARY KEY, "
            "next_at TIMESTAMPTZ NOT NULL, paused_until TIMESTAMPTZ)"
        )
        connection.exec_driver_sql(
            "INSERT INTO pendo_rate_budget VALUES (%(destination)s, now(), NULL)",
            {"destination": DESTINATION},
        )
    budget = PostgresBudget(url)
    try:
        for _ in range(3):
            budget.limiter(DESTINATION, 10).acquire()()
    finally:
        budget.close()
    with engine.begin() as connection:
        windows = connection.exec_driver_sql(
            "SELECT cardinality(written_at) FROM pendo_rate_budget"
        ).all()
    engine.dispose()
    assert windows == [(3,)]


@pytest.mark.postgres
def test_a_postgresql_budget_that_cannot_be_written_says_so(
    postgres_url: str, pg_schema: str
) -> None:
    import sqlalchemy as sa

    url = f"{postgres_url}?options=-csearch_path%3D{pg_schema}"
    budget = PostgresBudget(url)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE pendo_rate_budget")
    engine.dispose()
    try:
        with pytest.raises(
            BudgetUnavailable, match=r"budget in PostgreSQL failed: .*pendo_rate_budget"
        ):
            budget.limiter(DESTINATION, 10).acquire()()
    finally:
        budget.close()
