"""Two runs of one sync partition kept apart on the Dagster side: the run queue's rule in the
repo's `dagster.yaml`, and which unfinished runs make the sensors hold a partition back."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pendo_assets.defs.run_overlap import partitions_in_flight, sync_partition_tags

REPO_ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-11-19"
SYNC_ASSETS = (dg.AssetKey(["warehouse", "visitor_plans"]), dg.AssetKey(["pendo", "visitor_plans"]))


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def add_run(
    instance: dg.DagsterInstance,
    status: dg.DagsterRunStatus,
    *,
    job_name: str = "visitor_plans_sync",
    partition: str = DAY,
    asset_selection: frozenset[dg.AssetKey] | None = None,
) -> None:
    instance.add_run(
        dg.DagsterRun(
            job_name=job_name,
            run_id=str(uuid.uuid4()),
            tags={"dagster/partition": partition},
            status=status,
            asset_selection=asset_selection,
        )
    )


def in_flight(instance: dg.DagsterInstance, *partitions: str) -> set[str]:
    return partitions_in_flight(
        instance,
        job_name="visitor_plans_sync",
        asset_keys=SYNC_ASSETS,
        partition_keys=partitions,
    )


# -- the run queue -----------------------------------------------------------------------------


def test_dagster_yaml_starts_one_run_per_sync_partition_and_keeps_the_pool_limit(
    tmp_path: Path,
) -> None:
    shutil.copyfile(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        config = instance.get_concurrency_config()

    assert config.run_queue_config is not None
    assert config.run_queue_config.tag_concurrency_limits == [
        {
            "key": "pendo_assets/sync_partition",
            "value": {"applyLimitPerUniqueValue": True},
            "limit": 1,
        }
    ]
    assert config.pool_config.default_pool_limit == 2


def test_the_tag_names_the_sync_and_the_partition() -> None:
    assert sync_partition_tags("visitor_plans", DAY) == {
        "pendo_assets/sync_partition": "visitor_plans:2026-11-19"
    }


# -- which runs hold a partition back ----------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    ],
)
def test_an_unfinished_run_of_the_sync_job_holds_its_partition(
    instance: dg.DagsterInstance, status: dg.DagsterRunStatus
) -> None:
    add_run(instance, status)

    assert in_flight(instance, DAY, "2026-11-20") == {DAY}


@pytest.mark.parametrize(
    "status",
    [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED],
)
def test_a_finished_run_holds_nothing(
    instance: dg.DagsterInstance, status: dg.DagsterRunStatus
) -> None:
    add_run(instance, status)

    assert in_flight(instance, DAY) == set()


def test_a_run_materializing_one_of_the_syncs_assets_from_another_job_holds_its_partition(
    instance: dg.DagsterInstance,
) -> None:
    # What launching `pendo/visitor_plans` from the asset graph creates.
    add_run(
        instance,
        dg.DagsterRunStatus.STARTED,
        job_name="__ASSET_JOB",
        asset_selection=frozenset({SYNC_ASSETS[1]}),
    )

    assert in_flight(instance, DAY) == {DAY}


def test_runs_of_other_syncs_hold_nothing(instance: dg.DagsterInstance) -> None:
    add_run(instance, dg.DagsterRunStatus.STARTED, job_name="account_plans_sync")
    add_run(
        instance,
        dg.DagsterRunStatus.STARTED,
        job_name="__ASSET_JOB",
        asset_selection=frozenset({dg.AssetKey(["pendo", "account_plans"])}),
    )

    assert in_flight(instance, DAY) == set()


def test_asking_about_no_partitions_finds_none(instance: dg.DagsterInstance) -> None:
    add_run(instance, dg.DagsterRunStatus.STARTED)

    assert in_flight(instance) == set()


def test_every_run_of_a_sync_job_for_a_partition_carries_the_sync_partition_tag() -> None:
    """Launchpad runs and `dagster job backfill` runs take their tags from the job's
    partitioned config, so the queue rule applies to them as to the schedule's."""
    from datetime import date

    from pendo_assets.defs.database_resources import SyncStateResource, WarehouseResource
    from pendo_assets.defs.factory import build_pendo_definitions
    from pendo_assets.defs.resources import PendoResource
    from pendo_assets.sync.spec import SourceSpec, SyncSpec

    spec = SyncSpec(
        name="accounts",
        object_type="account_metadata",
        source=SourceSpec(partition_column="updated_at", table="accounts"),
        mapping={"id": "accountId", "name": "name"},
    )
    resources = {
        "pendo": PendoResource(),
        "warehouse": WarehouseResource(url="sqlite://"),
        "sync_state": SyncStateResource(url="sqlite://"),
    }
    defs = build_pendo_definitions([spec], start_date=date(2026, 11, 1), resources=resources)
    config = defs.resolve_job_def("accounts_sync").partitioned_config

    assert config is not None
    assert config.get_tags_for_partition_key("2026-11-20") == {
        "pendo_assets/sync_partition": "accounts:2026-11-20",
        "dagster/partition": "2026-11-20",
    }
    assert config.get_run_config_for_partition_key("2026-11-20") == {}
