"""The scale demo's figures, each against numbers worked out by hand."""

from __future__ import annotations

import uuid
from datetime import date

import dagster as dg
import pytest

from pendo_assets.scale_demo.dagster_side import failed_partitions
from pendo_assets.scale_demo.measure import (
    busiest_window,
    combined_rate,
    landing,
    loaded_destination,
    most_at_once,
    open_per_bucket,
    timeline,
)
from pendo_assets.scale_demo.report import ScaleReport, judge
from pendo_assets.scale_demo.workload import EVENT_NAME, build_workload

# -- busiest second ----------------------------------------------------------------------------


def test_the_busiest_second_counts_arrivals_in_the_fullest_rolling_second() -> None:
    arrivals = [10.0, 10.5, 11.6, 11.7, 11.8, 11.9, 12.7]

    busiest = busiest_window(arrivals)

    assert busiest.requests == 4  # 11.6, 11.7, 11.8, 11.9
    assert busiest.starts_after_seconds == pytest.approx(1.6)


def test_an_arrival_exactly_one_second_later_falls_in_the_next_window() -> None:
    assert busiest_window([0.0, 1.0, 2.0, 3.0]).requests == 1


def test_evenly_spaced_arrivals_at_the_cap_fill_a_second_with_the_cap() -> None:
    arrivals = [n / 32 for n in range(320)]  # 32 a second, exact in binary

    assert busiest_window(arrivals).requests == 32


def test_no_arrivals_have_an_empty_busiest_second() -> None:
    assert busiest_window([]).requests == 0


# -- combined rate -----------------------------------------------------------------------------


def test_the_combined_rate_is_requests_over_the_first_to_last_span() -> None:
    assert combined_rate([10.0, 11.0, 12.0, 14.0, 15.0]) == 1.0  # 5 requests in 5 s


def test_the_loaded_destination_is_the_one_with_the_most_requests() -> None:
    arrivals = {"<integration_key>": [1.0, 90.0], "<track_event_secret>": [2.0, 3.0, 4.0]}

    assert loaded_destination(arrivals) == "<track_event_secret>"


def test_no_requests_load_no_destination() -> None:
    assert loaded_destination({}) is None


def test_one_request_has_no_rate() -> None:
    assert combined_rate([3.0]) == 0.0


def test_the_timeline_counts_requests_per_bucket_from_the_first() -> None:
    assert timeline([100.0, 101.0, 104.9, 105.0, 111.0], bucket=5.0) == [3, 1, 1]


# -- runs at once ------------------------------------------------------------------------------


def test_most_at_once_counts_overlapping_intervals() -> None:
    assert most_at_once([(0, 10), (2, 5), (3, 4), (6, 8)]) == 3


def test_an_interval_ending_as_another_starts_does_not_overlap_it() -> None:
    assert most_at_once([(0, 5), (5, 10)]) == 1


def test_most_at_once_accepts_a_generator() -> None:
    assert most_at_once((start, start + 10) for start in range(3)) == 3


def test_open_per_bucket_counts_intervals_open_at_each_bucket_middle() -> None:
    assert open_per_bucket([(0, 7), (4, 20)], first=0.0, buckets=3, bucket=5.0) == [1, 1, 1]


# -- landing -----------------------------------------------------------------------------------


def test_each_expected_record_once_is_exactly_once() -> None:
    result = landing({"a", "b"}, ["b", "a"])

    assert result.exactly_once
    assert (result.missing, result.duplicates, result.unexpected) == (0, 0, 0)


def test_missing_duplicated_and_unexpected_records_are_counted_apart() -> None:
    result = landing({"a", "b", "c"}, ["a", "a", "a", "b", "z"])

    assert (result.landed_once, result.missing, result.duplicates, result.unexpected) == (
        1,
        1,
        2,
        1,
    )
    assert not result.exactly_once
    assert not result.all_landed


def test_duplicates_alone_still_count_as_all_landed() -> None:
    assert landing({"a"}, ["a", "a"]).all_landed


# -- the workload ------------------------------------------------------------------------------


def test_the_workload_has_a_record_per_visitor_and_day_and_distinct_events() -> None:
    workload = build_workload([date(2026, 11, 1), date(2026, 11, 2)], visitors=3, events_per_day=4)

    assert workload.metadata == {
        (visitor, day)
        for visitor in ("v00000", "v00001", "v00002")
        for day in ("2026-11-01", "2026-11-02")
    }
    assert len(workload.events) == 8
    assert {visitor for visitor, _, _ in workload.events} == {"v00000", "v00001", "v00002"}
    assert {name for _, name, _ in workload.events} == {EVENT_NAME}
    first_day_ms = 1_793_491_200_000  # 2026-11-01T00:00:00Z
    assert min(ts for _, _, ts in workload.events) == first_day_ms


# -- the issue's numbers -----------------------------------------------------------------------


def passing_backfill() -> ScaleReport:
    landed = {"expected": 10, "landed_once": 10, "missing": 0, "duplicates": 0, "unexpected": 0}
    return ScaleReport(
        mode="backfill",
        cap=40.0,
        days=["2026-11-01"],
        busiest_second=44,  # both destinations together: not what the cap bounds
        busiest_second_by_credential={"<integration_key>": 2, "<track_event_secret>": 42},
        combined_rate=36.0,
        events=dict(landed),
        metadata=dict(landed),
        run_statuses={"SUCCESS": 16},
        runs_at_once=4,
        steps_by_worker={"scale1@host": 10, "scale2@host": 9},
    )


def test_a_backfill_at_the_issues_numbers_passes() -> None:
    report = passing_backfill()

    judge(report)

    assert report.passed, report.checks


def test_a_destination_whose_busiest_second_is_over_five_percent_above_the_cap_fails() -> None:
    report = passing_backfill()
    report.busiest_second_by_credential["<track_event_secret>"] = 43  # 40 * 1.05 = 42

    judge(report)

    assert [name for name, ok in report.checks.items() if not ok] == [
        "busiest second of each destination <= 1.05 x cap"
    ]


def test_a_rate_under_ninety_percent_of_the_cap_fails() -> None:
    report = passing_backfill()
    report.combined_rate = 35.9

    judge(report)

    assert [name for name, ok in report.checks.items() if not ok] == [
        "combined rate at the loaded destination >= 90% of cap"
    ]


def test_a_single_pacing_429_fails() -> None:
    report = passing_backfill()
    report.pacing_429 = 1

    judge(report)

    assert [name for name, ok in report.checks.items() if not ok] == ["no pacing 429"]


# -- which partitions a worker-kill run must re-run --------------------------------------------


def test_only_partitions_without_a_successful_run_are_run_again() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        for partition, status in [
            ("2026-11-01", dg.DagsterRunStatus.FAILURE),
            ("2026-11-01", dg.DagsterRunStatus.SUCCESS),  # re-run already succeeded
            ("2026-11-02", dg.DagsterRunStatus.FAILURE),
            ("2026-11-03", dg.DagsterRunStatus.CANCELED),
            ("2026-11-04", dg.DagsterRunStatus.SUCCESS),
        ]:
            instance.add_run(
                dg.DagsterRun(
                    job_name="scale_events_sync",
                    run_id=str(uuid.uuid4()),
                    tags={"dagster/partition": partition},
                    status=status,
                )
            )

        failed = failed_partitions(instance.get_run_records())

    assert failed == {"scale_events_sync": ["2026-11-02", "2026-11-03"]}
