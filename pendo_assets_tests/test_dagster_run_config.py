"""Run config of the `pendo/<name>` assets: dry_run and full_refresh, through Dagster."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa

from pendo_assets.defs.factory import daily_partitions
from pendo_assets.defs.sync_assets import build_sync_assets
from pendo_assets.sync.spec import SourceSpec, SyncSpec

SPEC = SyncSpec(
    name="plans",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={"id": "visitorId", "plan": "plan"},
    keep_payloads=True,  # the dry run's preview shows old values
)


def write_visitors(url: str, day: date, rows: list[tuple[str, str]]) -> None:
    engine = sa.create_engine(url)
    table = sa.Table(
        "visitors",
        sa.MetaData(),
        sa.Column("id", sa.Text),
        sa.Column("plan", sa.Text),
        sa.Column("updated_at", sa.DateTime),
    )
    with engine.begin() as connection:
        table.drop(connection, checkfirst=True)
        table.create(connection)
        at = datetime.combine(day, time(9))
        connection.execute(
            table.insert(), [{"id": i, "plan": p, "updated_at": at} for i, p in rows]
        )
    engine.dispose()


def materialize(resources: dict[str, Any], day: date, **config: bool) -> dict[str, Any]:
    assets = build_sync_assets(SPEC, daily_partitions(day - timedelta(days=3)))
    result = dg.materialize(
        assets,
        resources=resources,
        partition_key=day.isoformat(),
        run_config={"ops": {"pendo__plans": {"config": config}}} if config else None,
    )
    [event] = result.asset_materializations_for_node("pendo__plans")
    return {key: value.value for key, value in event.metadata.items()}


def test_dry_run_through_dagster_reports_the_diff_and_sends_nothing(
    sandbox: Any, sync_resources: Any, sqlite_url: str, sync_day: date
) -> None:
    resources = sync_resources()
    write_visitors(sqlite_url, sync_day, [("v-1", "pro"), ("v-2", "free")])
    materialize(resources, sync_day)
    write_visitors(sqlite_url, sync_day, [("v-1", "team"), ("v-2", "free"), ("v-3", "pro")])
    requests_before = sandbox.state()["counters"]["requests"]

    metadata = materialize(resources, sync_day, dry_run=True)

    assert metadata["dry_run"] is True
    assert (
        metadata["would_create"],
        metadata["would_change"],
        metadata["unchanged"],
        metadata["invalid"],
    ) == (1, 1, 1, 0)
    assert '| v-1 | plan | "pro" -> "team" |' in metadata["preview"]
    assert sandbox.state()["counters"]["requests"] == requests_before + 1  # the schema read
    assert sandbox.state()["metadata"]["visitor"]["v-1"]["custom"] == {"plan": "pro"}
    # Nothing was remembered either: the real run still sends both changes.
    after = materialize(resources, sync_day)
    assert (after["sent"], after["skipped_unchanged"]) == (2, 1)


def test_full_refresh_through_dagster_resends_unchanged_records(
    sandbox: Any, sync_resources: Any, sqlite_url: str, sync_day: date
) -> None:
    resources = sync_resources()
    write_visitors(sqlite_url, sync_day, [("v-1", "pro"), ("v-2", "free")])
    materialize(resources, sync_day)

    unchanged = materialize(resources, sync_day)
    refreshed = materialize(resources, sync_day, full_refresh=True)

    assert (unchanged["sent"], unchanged["skipped_unchanged"], unchanged["requests"]) == (0, 2, 0)
    assert (refreshed["sent"], refreshed["skipped"]) == (2, 0)


def test_a_dry_run_stopped_by_preflight_writes_no_failures(
    sandbox: Any, sync_resources: Any, sqlite_url: str, sync_day: date, stored_failures: Any
) -> None:
    write_visitors(sqlite_url, sync_day, [("v-1", "pro")])
    spec = SyncSpec(
        name="plans",
        object_type="visitor_metadata",
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "plan": "licence_tier"},  # a field Pendo does not have
    )
    result = dg.materialize(
        build_sync_assets(spec, daily_partitions(sync_day - timedelta(days=3))),
        resources=sync_resources(),
        partition_key=sync_day.isoformat(),
        run_config={"ops": {"pendo__plans": {"config": {"dry_run": True}}}},
        raise_on_error=False,
    )

    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "custom.licence_tier" in failure.step_failure_data.user_failure_data.description
    assert stored_failures() == []


def test_failures_of_an_earlier_attempt_of_the_same_run_are_resolved(state_url: str) -> None:
    from pendo_assets.sync.record.failure_store import FailureStore
    from pendo_assets.sync.results import RowFailure

    store = FailureStore(sa.create_engine(state_url, poolclass=sa.NullPool))
    failure = RowFailure(0, "v-1", "not sent: Pendo unreachable")
    started = datetime(2026, 11, 2, tzinfo=UTC)
    attempt = {"sync_name": "plans", "partition_key": "P", "run_id": "run-1"}
    store.record_run(**attempt, run_started_at=started, failures=[failure])
    # The step's retry (same run id) records its own result, which resolves the earlier one.
    store.record_run(**attempt, run_started_at=started, failures=[])
    assert [row["resolved_at"] is not None for row in store.query(run_id="run-1")] == [True]
