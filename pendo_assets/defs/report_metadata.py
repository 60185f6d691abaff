"""What a sync report shows in Dagster: materialization metadata and the failure-rate check."""

from __future__ import annotations

from typing import Any

import dagster as dg
import numpy as np

from pendo_assets.sync.results import SyncReport
from pendo_assets.sync.spec import SyncSpec

FAILURE_RATE_CHECK = "failure_rate"


def dry_run_metadata(report: SyncReport) -> dict[str, Any]:
    assert report.dry_run is not None
    dry = report.dry_run
    return {
        "dry_run": True,
        "dagster/row_count": report.rows,
        "would_create": dry.would_create,
        "would_change": dry.would_change,
        "unchanged": dry.unchanged,
        "invalid": dry.invalid,
        "preview": dg.MetadataValue.md(dry.preview),
        "failures": dg.MetadataValue.md(report.failures_markdown()),
    }


def report_metadata(spec: SyncSpec, report: SyncReport) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dagster/row_count": report.rows,
        "sent": report.sent,
        "failed": report.failed,
        "retried": report.retried,
        "skipped": report.skipped,
        "skipped_unchanged": report.skipped_unchanged,
    }
    if spec.is_metadata:
        metadata["not_in_pendo"] = report.not_in_pendo
    else:
        # Every track sync says how many sends lost their answer: duplicates never exceed it.
        metadata["in_doubt"] = report.in_doubt
        metadata["changed_after_delivery"] = report.changed_after_delivery
    metadata.update(
        {
            "requests": report.requests,
            "duration_seconds": round(report.duration_seconds, 3),
            "records_per_second": round(report.records_per_second, 1),
            "failures": dg.MetadataValue.md(report.failures_markdown()),
        }
    )
    if report.destination:
        metadata["destination"] = report.destination
    if report.partition_fingerprint:
        metadata["partition_fingerprint"] = report.partition_fingerprint
    if report.warnings:
        metadata["warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in report.warnings))
    return metadata


def failure_rate_check(spec: SyncSpec, report: SyncReport) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=FAILURE_RATE_CHECK,
        passed=bool(np.less_equal(report.failure_rate, spec.max_failure_rate)),
        metadata={
            "failure_rate": float(report.failure_rate),
            "max_failure_rate": float(spec.max_failure_rate),
            "failed": report.failed,
            "rows": report.rows,
        },
    )
