"""The asset checks: ``identifiers_not_null`` on ``warehouse/<name>`` (blocking) and
``failure_rate`` on ``pendo/<name>``, through ``dagster.materialize``."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy import Column, DateTime, Integer, Text

from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.spec import SourceSpec, SyncSpec


def visitors_spec(max_failure_rate: float) -> SyncSpec:
    return SyncSpec(
        name="visitor_plans",
        object_type="visitor_metadata",
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "plan": "plan", "seats": "seats"},
        max_failure_rate=max_failure_rate,
    )


def visitors(url: str, day: date, rows: list[tuple[Any, Any]]) -> None:
    """Rows ``(id, seats)`` with plan ``pro``, one a minute from 08:00 on ``day``."""
    engine = sa.create_engine(url)
    table = sa.Table(
        "visitors",
        sa.MetaData(),
        Column("id", Text),
        Column("plan", Text),
        Column("seats", Integer),  # SQLite keeps text it cannot read as a number as text
        Column("updated_at", DateTime),
    )
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(
            table.insert(),
            [
                {
                    "id": v,
                    "plan": "pro",
                    "seats": s,
                    "updated_at": datetime.combine(day, time(8, m)),
                }
                for m, (v, s) in enumerate(rows)
            ],
        )
    engine.dispose()


def check_metadata(evaluation: Any) -> dict[str, Any]:
    return {key: value.value for key, value in evaluation.metadata.items()}


# -- identifiers_not_null --------------------------------------------------------------------


def test_identifiers_check_passes_when_every_row_has_an_id(
    materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", 1), ("v-2", 2)])

    run = materialize_sync(visitors_spec(0.0), sync_day)

    check = run.check("identifiers_not_null")
    assert check.passed
    assert check.asset_key == dg.AssetKey(["warehouse", "visitor_plans"])
    assert check.description is None
    assert check_metadata(check) == {
        "rows": 2,
        "missing_identifiers": 0,
        "share": 0.0,
        "max_failure_rate": 0.0,
    }


def test_identifiers_check_warns_while_missing_ids_stay_within_the_failure_rate(
    materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", 1), ("v-2", 2), ("v-3", 3), (None, 4)])

    run = materialize_sync(visitors_spec(0.25), sync_day)  # 1 of 4 is exactly 25%

    check = run.check("identifiers_not_null")
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.description == "1 of 4 rows have no visitorId in `id`"
    assert check_metadata(check)["share"] == 0.25


def test_a_warning_identifiers_check_lets_the_push_go_ahead(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", 1), ("v-2", 2), ("v-3", 3), ("", 4)])

    run = materialize_sync(visitors_spec(0.25), sync_day)

    assert run.result.success
    assert run.materialized("pendo")
    assert sorted(sandbox.state(requests=False)["metadata"]["visitor"]) == ["v-1", "v-2", "v-3"]
    assert (run.metadata("pendo")["sent"], run.metadata("pendo")["failed"]) == (3, 1)


def test_identifiers_check_errors_when_missing_ids_exceed_the_failure_rate(
    materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", 1), ("v-2", 2), (None, 3), ("  ", 4)])

    run = materialize_sync(visitors_spec(0.25), sync_day)  # 2 of 4 is 50%

    check = run.check("identifiers_not_null")
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.blocking
    assert check.description == "2 of 4 rows have no visitorId in `id`"
    assert check_metadata(check) == {
        "rows": 4,
        "missing_identifiers": 2,
        "share": 0.5,
        "max_failure_rate": 0.25,
    }


def test_an_erroring_identifiers_check_blocks_the_push(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", 1), (None, 2)])

    run = materialize_sync(visitors_spec(0.25), sync_day)

    assert not run.result.success
    assert run.materialized("warehouse")
    assert not run.materialized("pendo")
    assert run.result.get_failed_step_keys() == {"warehouse__visitor_plans"}
    assert run.step_failure("warehouse").error.message.startswith(
        "dagster._core.errors.DagsterAssetCheckFailedError: 1 blocking asset check failed "
        "with ERROR severity:\nwarehouse/visitor_plans: identifiers_not_null"
    )
    assert sandbox.state(requests=False)["counters"]["requests"] == 0


def test_an_empty_partition_passes_the_identifiers_check(
    materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, date(2000, 1, 1), [("v-old", 1)])

    run = materialize_sync(visitors_spec(0.0), sync_day)

    check = run.check("identifiers_not_null")
    assert check.passed
    assert check_metadata(check)["rows"] == 0


# -- failure_rate ------------------------------------------------------------------------------


def test_failure_rate_check_passes_at_or_under_the_maximum(
    materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", 1), ("v-2", 2), ("v-3", 3), ("v-4", "lots")])

    run = materialize_sync(visitors_spec(0.25), sync_day)

    check = run.check("failure_rate")
    assert check.passed
    assert check.asset_key == dg.AssetKey(["pendo", "visitor_plans"])
    assert check_metadata(check) == {
        "failure_rate": 0.25,
        "max_failure_rate": 0.25,
        "failed": 1,
        "rows": 4,
    }


def test_failure_rate_check_fails_over_the_maximum_without_failing_the_run(
    materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", 1), ("v-2", 2), ("v-3", "lots"), ("v-4", "lots")])

    run = materialize_sync(visitors_spec(0.25), sync_day)

    check = run.check("failure_rate")
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert not check.blocking
    assert check_metadata(check)["failure_rate"] == 0.5
    assert run.result.success
    assert run.metadata("pendo")["failed"] == 2


def test_failure_rate_check_passes_for_an_empty_partition(
    materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, date(2000, 1, 1), [("v-old", 1)])

    run = materialize_sync(visitors_spec(0.0), sync_day)

    check = run.check("failure_rate")
    assert check.passed
    assert check_metadata(check) == {
        "failure_rate": 0.0,
        "max_failure_rate": 0.0,
        "failed": 0,
        "rows": 0,
    }
