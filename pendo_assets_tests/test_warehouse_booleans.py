"""SQLite keeps whatever was inserted into a BOOLEAN column: values that spell a boolean read as
one, anything else fails its own row instead of arriving in Pendo as `true`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pendo_assets.sync.prepare.metadata_rows import prepare_metadata
from pendo_assets.sync.source.warehouse import read_partition
from pendo_assets.sync.spec import SourceSpec, SyncSpec

SOURCE = SourceSpec(partition_column="updated_at", table="visitors")
SPEC = SyncSpec(
    name="visitors",
    object_type="visitor_metadata",
    source=SOURCE,
    mapping={"id": "visitorId", "trial": "is_trial"},
)


def sqlite_visitors(tmp_path: Path, trials: list[Any]) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE visitors (id TEXT, trial BOOLEAN, updated_at TEXT)"
        )
        for i, trial in enumerate(trials):
            connection.execute(
                sa.text("INSERT INTO visitors VALUES (:id, :trial, '2026-11-02T10:00:00Z')"),
                {"id": f"v-{i}", "trial": trial},
            )
    return engine


def test_boolean_spellings_in_a_sqlite_boolean_column_read_as_booleans(tmp_path: Path) -> None:
    engine = sqlite_visitors(tmp_path, [1, 0, "false", "TRUE", "yes", None])
    frame = read_partition(engine, SOURCE, ["id", "trial", "updated_at"], "2026-11-02")
    prepared = prepare_metadata(SPEC, frame)

    assert prepared.custom["is_trial"] == [True, False, False, True, True, None]
    assert prepared.failures == {}


@pytest.mark.parametrize("stored", ["lots", 1.5, 2, "x" * 600])
def test_a_value_that_spells_no_boolean_fails_its_row_naming_the_column(
    tmp_path: Path, stored: Any
) -> None:
    engine = sqlite_visitors(tmp_path, [1, stored])
    frame = read_partition(engine, SOURCE, ["id", "trial", "updated_at"], "2026-11-02")
    prepared = prepare_metadata(SPEC, frame)

    [failure] = prepared.failures.values()
    assert failure.record_id == "v-1"
    assert failure.reason.startswith("column 'trial': value ")
    assert failure.reason.endswith("is not a boolean (true/false, t/f, yes/no, 1/0)")
    assert prepared.custom["is_trial"][0] is True
