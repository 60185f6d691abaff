"""A source's ``timezone``: naive timestamps and offset-less text are wall-clock times there.

The UTC day 2026-11-03 is 2026-11-02T19:00 to 2026-11-03T19:00 in New York (EST, UTC-5).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Column, DateTime, Integer, Text

from pendo_assets.sync.source.warehouse import read_partition
from pendo_assets.sync.spec import SourceSpec, SyncConfigError, parse_syncs

if TYPE_CHECKING:
    from pendo_assets_tests.conftest import WarehouseDb

DAY = "2026-11-03"
NEW_YORK = SourceSpec(partition_column="ts", table="events", timezone="America/New_York")


def test_naive_timestamps_are_cut_at_the_utc_day_in_the_sources_wall_clock(
    warehouse_db: WarehouseDb,
) -> None:
    stamps = [
        datetime(2026, 11, 2, 18, 59),  # 23:59Z on the 2nd
        datetime(2026, 11, 2, 19, 0),  # 00:00Z on the 3rd
        datetime(2026, 11, 3, 18, 59),  # 23:59Z on the 3rd
        datetime(2026, 11, 3, 19, 0),  # 00:00Z on the 4th
    ]
    rows = [{"id": i, "ts": ts} for i, ts in enumerate(stamps, start=1)]
    warehouse_db.create("events", Column("id", Integer), Column("ts", DateTime), rows=rows)

    frame = read_partition(warehouse_db.engine, NEW_YORK, ["id"], DAY)

    assert list(frame["id"]) == [2, 3]


def test_offset_less_text_is_wall_clock_time_and_text_with_an_offset_is_not(
    warehouse_db: WarehouseDb,
) -> None:
    values = [
        "2026-11-02T18:59:00",  # 23:59Z on the 2nd
        "2026-11-02T19:00:00",  # 00:00Z on the 3rd
        "2026-11-03T20:00:00Z",  # an offset wins over the source's zone: the 3rd
        "2026-11-03T19:00:00",  # 00:00Z on the 4th
    ]
    rows = [{"id": i, "ts": ts} for i, ts in enumerate(values, start=1)]
    warehouse_db.create("events", Column("id", Integer), Column("ts", Text), rows=rows)

    frame = read_partition(warehouse_db.engine, NEW_YORK, ["id"], DAY)

    assert list(frame["id"]) == [2, 3]


def syncs_with_timezone(timezone: object) -> dict[str, object]:
    return {
        "start_date": "2026-01-01",
        "syncs": [
            {
                "name": "visitors",
                "object_type": "visitor_metadata",
                "source": {"table": "visitors", "partition_column": "ts", "timezone": timezone},
                "mapping": {"id": "visitorId", "plan": "plan"},
            }
        ],
    }


def test_the_timezone_is_read_from_the_source_in_the_syncs_file() -> None:
    syncs = parse_syncs(syncs_with_timezone("Europe/Berlin"), origin="syncs.yaml")

    assert syncs.by_name("visitors").source.timezone == "Europe/Berlin"


def test_a_source_without_a_timezone_is_utc() -> None:
    assert SourceSpec(partition_column="ts", table="t").timezone == "UTC"


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "", 5])
def test_an_unknown_timezone_is_refused_at_load_naming_the_sync(timezone: object) -> None:
    with pytest.raises(SyncConfigError) as error:
        parse_syncs(syncs_with_timezone(timezone), origin="syncs.yaml")

    assert str(error.value) == (
        f"syncs.yaml: sync 'visitors': source timezone {timezone!r} is not an IANA time zone "
        "(e.g. 'UTC', 'Europe/Berlin')"
    )
