"""Benchmark: value conversion of a million-row PostgreSQL partition with two timestamp columns.

    .venv/bin/python benchmarks/bench_values.py            # 1,000,000 rows
    .venv/bin/python benchmarks/bench_values.py --rows N

psycopg hands `timestamptz` values over as Python datetimes in an object column. Each figure is
CPU time per value of our conversion (`to_json_scalars` over the column, as a sync runs it)
beside the vectorised floor (one pandas pass over the same column, no checks) and beside one
pandas call per value, the shape of the path earlier releases took (timed on a sample).
Needs the local PostgreSQL (127.0.0.1:5432, database `test`); works in a schema of its own and
drops it. Writes `benchmarks/latest_values_results.md`.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pendo_assets.sync.prepare.convert import to_json_scalars
from pendo_assets.sync.source.warehouse import read_partition
from pendo_assets.sync.spec import SourceSpec

URL = os.environ.get(
    "PENDO_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RESULTS_FILE = Path(__file__).resolve().parent / "latest_values_results.md"
DAY = "2026-11-02"
OLD_PATH_SAMPLE = 2_000  # the per-value path of earlier releases, timed on a sample


def _cpu(work: object) -> float:
    started = time.process_time()
    work()  # type: ignore[operator]
    return time.process_time() - started


def _vectorised_ms(values: pd.Series) -> pd.Series:
    """The floor: one pandas pass from the object column to epoch milliseconds, no checks."""
    epoch, millisecond = pd.Timestamp(0, tz="UTC"), pd.Timedelta(milliseconds=1)
    return (pd.to_datetime(values, utc=True) - epoch) // millisecond


def _old_per_value_ms(values: list[object]) -> None:
    """The shape of what earlier releases did for every datetime in an object column."""
    for value in values:
        pd.to_datetime(pd.Series([value], dtype=object), utc=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    schema = f"bench_values_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(URL, poolclass=sa.NullPool)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(
                f"CREATE TABLE {schema}.visitors AS SELECT 'v-' || i AS id, "
                f"timestamptz '{DAY} 00:00:00+00' + mod(i, 86400) * interval '1 second' "
                "AS updated_at, timestamptz '2025-01-01 00:00:00+00' + i * interval '1 minute' "
                "AS signup_at, timestamptz '2026-10-01 00:00:00+00' + i * interval '7 second' "
                f"AS last_seen_at FROM generate_series(1, {rows}) AS i"
            )
        engine = sa.create_engine(URL, connect_args={"options": f"-c search_path={schema}"})
        source = SourceSpec(partition_column="updated_at", table="visitors")
        started = time.perf_counter()
        frame = read_partition(
            engine, source, ["id", "signup_at", "last_seen_at", "updated_at"], DAY
        )
        read_seconds = time.perf_counter() - started
        engine.dispose()
        figures = []
        for column in ("signup_at", "last_seen_at"):
            values = frame[column]
            ours = _cpu(lambda values=values: to_json_scalars(values)) / len(values)
            floor = _cpu(lambda values=values: _vectorised_ms(values)) / len(values)
            sample = values.iloc[:OLD_PATH_SAMPLE].tolist()
            old = _cpu(lambda sample=sample: _old_per_value_ms(sample)) / len(sample)
            figures.append((column, ours, floor, old))
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    lines = [
        f"rows={len(frame):,} read from PostgreSQL in {read_seconds:.1f} s (one query); "
        "CPU time per timestamptz value (object column of Python datetimes):",
        "",
        "| column | ours (us) | vectorised floor (us) | ours / floor | per-value pandas call (us) "
        "| per-value / ours |",
        "|---|---|---|---|---|---|",
    ]
    for column, ours, floor, old in figures:
        lines.append(
            f"| {column} | {ours * 1e6:.2f} | {floor * 1e6:.2f} | {ours / floor:.1f}x | "
            f"{old * 1e6:.0f} | {old / ours:.0f}x |"
        )
    lines += [
        "",
        "ours: `to_json_scalars` as a sync runs it (type checks, then one vectorised conversion);"
        " floor: one `pd.to_datetime` pass over the same object column and the arithmetic, with"
        " no checks; per-value: one pandas call per value (the shape of the path earlier "
        f"releases took), timed on the first {OLD_PATH_SAMPLE:,} values.",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS_FILE.write_text(text + "\n")
    print(f"\nwritten to {RESULTS_FILE}")


if __name__ == "__main__":
    main()
