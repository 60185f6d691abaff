"""Two runs at once, as a backfill makes them, share one Pendo budget: the requests-per-second
cap holds for their sum, and a visitor's events stay a second apart across the runs.
SQLite state (budget host-wide) and PostgreSQL state (budget in the database)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from pendo_assets.sandbox import SandboxServer
from pendo_assets_tests.test_dagster_guarantees import (  # state_url: SQLite and PostgreSQL
    EVENTS,
    _create,
    at,
    concurrently,
    state_url,  # noqa: F401
)
from pendo_assets_tests.test_rate_budget import busiest_second

CAP = 20
VISITORS = 20
EVENTS_PER_VISITOR_AND_DAY = 3


def two_days_of_the_same_visitors(url: str, first: date) -> None:
    rows = [
        {
            "visitor_id": f"v-{v}",
            "event_name": "Exported",
            "occurred_at": at(day, 10, n, v),
            "plan": "pro",
        }
        for day in (first, first + timedelta(days=1))
        for v in range(VISITORS)
        for n in range(EVENTS_PER_VISITOR_AND_DAY)
    ]
    _create(url, "events", rows, "visitor_id", "event_name", "plan", stamp="occurred_at")


def test_two_runs_at_once_stay_within_one_cap_and_keep_each_visitor_paced(
    sandbox: SandboxServer, materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    first_day = sync_day - timedelta(days=1)
    two_days_of_the_same_visitors(sqlite_url, first_day)

    runs = concurrently(
        lambda: materialize_sync(EVENTS, first_day, max_requests_per_second=CAP),
        lambda: materialize_sync(EVENTS, sync_day, max_requests_per_second=CAP),
    )

    assert all(run.result.success for run in runs)
    state = sandbox.state(timings=True)
    total = 2 * VISITORS * EVENTS_PER_VISITOR_AND_DAY
    assert [run.metadata()["sent"] for run in runs] == [total // 2, total // 2]
    assert Counter(e["visitorId"] for e in state["events"]) == Counter(
        {f"v-{v}": 2 * EVENTS_PER_VISITOR_AND_DAY for v in range(VISITORS)}
    )
    assert state["counters"]["pacing_429"] == 0
    for run in runs:  # the resources, the budget's among them, were closed cleanly
        assert not [
            e.message
            for e in run.result.all_events
            if "Teardown" in (e.message or "") or e.is_failure
        ]
    arrivals = [r["received_at"] for r in state["requests"]]
    assert len(arrivals) == total  # nothing was refused and sent again
    assert busiest_second(arrivals) <= CAP * 1.05
