"""Reads back what the demo's runs recorded on the Dagster instance, per sync and partition."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from pendo_assets.sync.spec import SyncsFile

COUNTS = ("rows", "sent", "failed", "skipped", "retried", "in_doubt")


@dataclass(frozen=True)
class SummaryRow:
    sync: str
    partition: str
    rows: int | None
    sent: int | None
    failed: int | None
    skipped: int | None
    retried: int | None
    in_doubt: int | None = None  # track events only: sends whose answer was lost


def _value(metadata: dict[str, dg.MetadataValue], key: str) -> int | None:
    entry = metadata.get(key)
    return None if entry is None else int(entry.value)  # type: ignore[arg-type]


def latest_materialization(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str
) -> dg.AssetMaterialization | None:
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    )
    if not result.records:
        return None
    return result.records[0].asset_materialization


def summary_rows(
    instance: dg.DagsterInstance, syncs: SyncsFile, partitions: list[str]
) -> list[SummaryRow]:
    rows = []
    for sync in syncs.syncs:
        for partition in partitions:
            materialization = latest_materialization(
                instance, dg.AssetKey(["pendo", sync.name]), partition
            )
            metadata = dict(materialization.metadata) if materialization else {}
            rows.append(
                SummaryRow(
                    sync=sync.name,
                    partition=partition,
                    rows=_value(metadata, "dagster/row_count"),
                    sent=_value(metadata, "sent"),
                    failed=_value(metadata, "failed"),
                    skipped=_value(metadata, "skipped"),
                    retried=_value(metadata, "retried"),
                    in_doubt=_value(metadata, "in_doubt"),
                )
            )
    return rows


def format_summary(rows: list[SummaryRow]) -> str:
    header = ("sync", "partition", *COUNTS)
    table = [header] + [
        (
            r.sync,
            r.partition,
            *(
                "-" if v is None else str(v)
                for v in (r.rows, r.sent, r.failed, r.skipped, r.retried, r.in_doubt)
            ),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n" + "\n".join(lines)
