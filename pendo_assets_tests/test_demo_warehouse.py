"""The demo warehouse: deterministic rows in the 7 days before today, bad rows exactly as listed."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pendo_assets.demo.warehouse_data import (
    DemoWarehouseSummary,
    build_demo_warehouse,
    main,
)
from pendo_assets.sync.prepare.field_names import name_problem

TODAY = date(2026, 11, 25)
WINDOW = (
    "2026-11-18",
    "2026-11-19",
    "2026-11-20",
    "2026-11-21",
    "2026-11-22",
    "2026-11-23",
    "2026-11-24",
)
OLD_DAY = "2026-11-16"  # 9 days before TODAY
SMALL: dict[str, Any] = {"visitors": 200, "accounts": 30, "events": 1000}
TABLES = ("visitors", "accounts", "events")


@dataclass(frozen=True)
class Built:
    path: Path
    summary: DemoWarehouseSummary


def build(path: Path, **kwargs: Any) -> Built:
    options = {"today": TODAY, **SMALL, **kwargs}
    return Built(path, build_demo_warehouse(f"sqlite:///{path}", **options))


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def table_rows(path: Path, table: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]


def visitor_day(updated_at: str) -> str:
    return datetime.fromisoformat(updated_at).date().isoformat()


def account_day(updated_at: str) -> str:
    return datetime.fromisoformat(updated_at).astimezone(UTC).date().isoformat()


def event_day(occurred_at: int) -> str:
    return datetime.fromtimestamp(occurred_at / 1000, UTC).date().isoformat()


def partition_days(path: Path, table: str) -> list[str]:
    if table == "visitors":
        return [visitor_day(v) for (v,) in query(path, "SELECT updated_at FROM visitors")]
    if table == "accounts":
        return [account_day(v) for (v,) in query(path, "SELECT updated_at FROM accounts")]
    return [event_day(v) for (v,) in query(path, "SELECT occurred_at FROM events")]


def ids_where(path: Path, sql: str) -> set[Any]:
    return {row[0] for row in query(path, sql)}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One small warehouse shared by the read-only tests."""
    return build(tmp_path_factory.mktemp("small") / "warehouse.db")


@pytest.fixture(scope="module")
def default_size(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The size ``make demo`` builds."""
    path = tmp_path_factory.mktemp("default") / "warehouse.db"
    return Built(path, build_demo_warehouse(f"sqlite:///{path}", today=TODAY))


# -- determinism and shape -----------------------------------------------------------------------


def test_same_seed_and_today_build_identical_rows(tmp_path: Path) -> None:
    first = build(tmp_path / "a.db")
    second = build(tmp_path / "b.db")
    for table in TABLES:
        assert table_rows(first.path, table) == table_rows(second.path, table)
    assert first.summary.bad_rows == second.summary.bad_rows
    assert first.summary.edge_rows == second.summary.edge_rows


def test_another_seed_builds_other_rows(tmp_path: Path) -> None:
    first = build(tmp_path / "a.db", seed=7)
    second = build(tmp_path / "b.db", seed=8)
    assert table_rows(first.path, "visitors") != table_rows(second.path, "visitors")


def test_tables_have_the_declared_column_types(small: Built) -> None:
    def declared(table: str) -> list[tuple[str, str]]:
        return [(row[1], row[2]) for row in query(small.path, f"PRAGMA table_info({table})")]

    assert declared("visitors") == [
        ("id", "TEXT"),
        ("account_id", "TEXT"),
        ("email", "TEXT"),
        ("plan", "TEXT"),
        ("seats", "INTEGER"),
        ("is_trial", "BOOLEAN"),
        ("signup_date", "DATETIME"),
        ("updated_at", "DATETIME"),
    ]
    assert declared("accounts") == [
        ("id", "TEXT"),
        ("name", "TEXT"),
        ("tier", "TEXT"),
        ("arr", "FLOAT"),
        ("updated_at", "TEXT"),
    ]
    assert declared("events") == [
        ("event_id", "TEXT"),
        ("visitor_id", "TEXT"),
        ("account_id", "TEXT"),
        ("event_name", "TEXT"),
        ("occurred_at", "BIGINT"),
        ("feature", "TEXT"),
        ("duration_ms", "INTEGER"),
        ("properties", "TEXT"),
        ("ip", "TEXT"),
        ("user_agent", "TEXT"),
        ("url", "TEXT"),
    ]


def test_tables_hold_exactly_the_requested_row_counts(small: Built) -> None:
    counts = {table: query(small.path, f"SELECT count(*) FROM {table}")[0][0] for table in TABLES}
    assert counts == {"visitors": 200, "accounts": 30, "events": 1000}
    assert small.summary.counts == counts


def test_default_build_holds_the_default_row_counts(default_size: Built) -> None:
    counts = {t: query(default_size.path, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
    assert counts == {"visitors": 3000, "accounts": 300, "events": 20000}
    assert default_size.summary.counts == counts


def test_default_build_has_hundreds_of_visitor_rows_each_day(default_size: Built) -> None:
    per_day = default_size.summary.rows_per_partition("visitors")
    assert list(per_day) == list(WINDOW)
    assert min(per_day.values()) >= 400


def test_rebuilding_replaces_the_rows_instead_of_appending(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.db"
    build(path)
    build(path, visitors=100, accounts=20, events=500)
    counts = [query(path, f"SELECT count(*) FROM {table}")[0][0] for table in TABLES]
    assert counts == [100, 20, 500]


def test_missing_directory_of_the_sqlite_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "demo" / "warehouse.db"
    build(path)
    assert query(path, "SELECT count(*) FROM accounts") == [(30,)]


def test_sizes_too_small_for_the_bad_rows_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="accounts must be at least 10, got 9"):
        build(tmp_path / "warehouse.db", accounts=9)


# -- partitions ----------------------------------------------------------------------------------


def test_summary_partitions_are_the_seven_days_before_today_oldest_first(small: Built) -> None:
    assert small.summary.partitions == WINDOW


def test_default_today_is_the_current_utc_date(tmp_path: Path) -> None:
    before = datetime.now(UTC).date()
    summary = build_demo_warehouse(f"sqlite:///{tmp_path / 'w.db'}", **SMALL)
    after = datetime.now(UTC).date()
    assert summary.today in (before, after)
    assert summary.partitions[-1] == str(summary.today - timedelta(days=1))


def test_visitor_and_account_rows_all_fall_in_the_seven_days(small: Built) -> None:
    assert set(partition_days(small.path, "visitors")) <= set(WINDOW)
    assert set(partition_days(small.path, "accounts")) <= set(WINDOW)


def test_events_outside_the_seven_days_are_exactly_the_old_ones(small: Built) -> None:
    outside = {
        event_id: event_day(ms)
        for event_id, ms in query(small.path, "SELECT event_id, occurred_at FROM events")
        if event_day(ms) not in WINDOW
    }
    old = small.summary.bad_rows["events_older_than_7_days"]
    assert len(old) == 2
    assert outside == dict.fromkeys(old, OLD_DAY)


def test_every_day_has_rows_in_every_table(small: Built) -> None:
    for table in TABLES:
        assert set(WINDOW) <= set(partition_days(small.path, table)), table


def test_rows_per_partition_matches_the_tables(small: Built) -> None:
    for table in TABLES:
        days = partition_days(small.path, table)
        expected = {day: days.count(day) for day in sorted(set(days))}
        assert small.summary.rows_per_partition(table) == expected


# -- visitors and accounts -----------------------------------------------------------------------


def test_every_visitor_account_id_exists_in_accounts(small: Built) -> None:
    referenced = ids_where(small.path, "SELECT account_id FROM visitors")
    existing = ids_where(small.path, "SELECT id FROM accounts WHERE id IS NOT NULL")
    assert None not in referenced
    assert referenced <= existing


def test_visitors_with_null_id_are_the_documented_ones(small: Built) -> None:
    emails = ids_where(small.path, "SELECT email FROM visitors WHERE id IS NULL")
    documented = small.summary.bad_rows["visitors_null_id"]
    assert len(documented) == 2
    assert emails == set(documented)


def test_visitors_with_empty_id_are_the_documented_ones(small: Built) -> None:
    emails = ids_where(small.path, "SELECT email FROM visitors WHERE id = ''")
    documented = small.summary.bad_rows["visitors_empty_id"]
    assert len(documented) == 2
    assert emails == set(documented)


def test_text_seats_visitor_holds_the_text_lots(small: Built) -> None:
    rows = query(small.path, "SELECT id, seats FROM visitors WHERE typeof(seats) != 'integer'")
    (visitor_id,) = small.summary.bad_rows["visitors_text_seats"]
    assert rows == [(visitor_id, "lots")]


def test_duplicate_visitor_ids_are_the_documented_ones_within_one_day(small: Built) -> None:
    rows = query(
        small.path,
        "SELECT id, updated_at FROM visitors WHERE id IN "
        "(SELECT id FROM visitors WHERE id != '' GROUP BY id HAVING count(*) > 1)",
    )
    by_id: dict[str, list[str]] = defaultdict(list)
    for visitor_id, updated_at in rows:
        by_id[visitor_id].append(updated_at)
    documented = small.summary.bad_rows["visitors_duplicate_id"]
    assert len(documented) == 3
    assert sorted(by_id) == sorted(documented)
    for times in by_id.values():
        assert len(times) == 2
        assert len(set(times)) == 2
        assert len({visitor_day(t) for t in times}) == 1


def test_visitor_emails_are_first_dot_last_at_example_com(small: Built) -> None:
    emails = ids_where(small.path, "SELECT email FROM visitors")
    bad = [e for e in emails if not (e.endswith("@example.com") and "." in e.split("@")[0])]
    assert bad == []


def test_accounts_with_null_id_are_the_documented_ones(small: Built) -> None:
    names = ids_where(small.path, "SELECT name FROM accounts WHERE id IS NULL")
    documented = small.summary.bad_rows["accounts_null_id"]
    assert len(documented) == 2
    assert names == set(documented)


def test_account_offsets_other_than_z_are_the_documented_accounts(small: Built) -> None:
    offsets = {
        account_id: updated_at[-6:]
        for account_id, updated_at in query(small.path, "SELECT id, updated_at FROM accounts")
        if not updated_at.endswith("Z")
    }
    documented = small.summary.edge_rows["accounts_non_utc_offset"]
    assert sorted(offsets) == sorted(documented)
    assert sorted(offsets.values()) == ["+02:00", "+05:30", "+09:00", "-05:00", "-08:00"]


def test_one_offset_account_has_a_local_date_other_than_its_utc_date(small: Built) -> None:
    shifted = [
        account_id
        for account_id, updated_at in query(small.path, "SELECT id, updated_at FROM accounts")
        if updated_at[:10] != account_day(updated_at)
    ]
    assert len(shifted) >= 1
    assert set(shifted) <= set(small.summary.edge_rows["accounts_non_utc_offset"])


# -- events --------------------------------------------------------------------------------------


def test_event_ids_are_unique_and_numbered_in_time_order(small: Built) -> None:
    rows = query(small.path, "SELECT event_id FROM events ORDER BY occurred_at, event_id")
    assert [event_id for (event_id,) in rows] == [f"evt-{n:06d}" for n in range(1, 1001)]


def test_events_with_null_visitor_id_are_the_documented_ones(small: Built) -> None:
    found = ids_where(small.path, "SELECT event_id FROM events WHERE visitor_id IS NULL")
    documented = small.summary.bad_rows["events_null_visitor_id"]
    assert len(documented) == 2
    assert found == set(documented)


def test_events_with_empty_name_are_the_documented_ones(small: Built) -> None:
    found = ids_where(small.path, "SELECT event_id FROM events WHERE event_name = ''")
    documented = small.summary.bad_rows["events_empty_event_name"]
    assert len(documented) == 2
    assert found == set(documented)


def test_properties_are_json_objects_except_the_documented_not_json(small: Built) -> None:
    not_json = set()
    rows = query(small.path, "SELECT event_id, properties FROM events WHERE properties NOT NULL")
    for event_id, text in rows:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            not_json.add(event_id)
        else:
            assert isinstance(value, dict), event_id
    documented = small.summary.bad_rows["events_properties_not_json"]
    assert len(documented) == 2
    assert not_json == set(documented)


def test_properties_with_names_pendo_refuses_are_the_documented_events(small: Built) -> None:
    refused = {}
    for event_id, text in query(small.path, "SELECT event_id, properties FROM events"):
        try:
            keys = json.loads(text or "{}")
        except json.JSONDecodeError:
            continue
        bad = sorted(key for key in keys if name_problem(key))
        if bad:
            refused[event_id] = bad
    documented = small.summary.bad_rows["events_bad_property_name"]
    assert sorted(refused.values()) == [["2fast"], ["has-dash"]]
    assert sorted(refused) == sorted(documented)


def test_properties_over_512_bytes_are_the_documented_events(small: Built) -> None:
    rows = query(small.path, "SELECT event_id, properties FROM events WHERE properties NOT NULL")
    too_large = {event_id for event_id, text in rows if len(text.encode()) > 512}
    documented = small.summary.bad_rows["events_properties_too_large"]
    assert len(documented) == 2
    assert too_large == set(documented)


def test_only_the_burst_visitors_have_two_events_within_a_second(small: Built) -> None:
    times: dict[str, list[int]] = defaultdict(list)
    for visitor_id, ms in query(small.path, "SELECT visitor_id, occurred_at FROM events"):
        if visitor_id is not None:
            times[visitor_id].append(ms)
    bursty = {
        visitor_id
        for visitor_id, stamps in times.items()
        if any(b - a <= 1000 for a, b in zip(sorted(stamps), sorted(stamps)[1:], strict=False))
    }
    documented = small.summary.edge_rows["event_burst_visitors"]
    assert len(documented) == 2
    assert bursty == set(documented)


def test_events_come_from_existing_visitors(small: Built) -> None:
    referenced = ids_where(small.path, "SELECT visitor_id FROM events WHERE visitor_id NOT NULL")
    existing = ids_where(small.path, "SELECT id FROM visitors WHERE id != ''")
    assert referenced <= existing


# -- command line --------------------------------------------------------------------------------


def test_cli_builds_the_warehouse_and_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "warehouse.db"
    argv = ["--url", f"sqlite:///{path}", "--today", "2026-11-25"]
    argv += ["--visitors", "200", "--accounts", "30", "--events", "1000"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == [
        f"Demo warehouse at sqlite:///{path} (seed 7, today 2026-11-25)",
        "visitors: 200 rows, accounts: 30 rows, events: 1000 rows",
    ]
    assert "  events_properties_not_json (2): " in out
    assert query(path, "SELECT count(*) FROM events") == [(1000,)]


def test_bad_rows_recent_puts_bad_rows_in_the_three_partitions_the_demo_syncs(
    tmp_path: Path,
) -> None:
    import sqlalchemy as sa

    from pendo_assets.demo.warehouse_data import build_demo_warehouse

    today = date(2026, 11, 26)
    url = f"sqlite:///{tmp_path / 'recent.db'}"
    build_demo_warehouse(
        url, today=today, visitors=200, accounts=30, events=1000, bad_rows_recent=True
    )
    recent = {str(today - timedelta(days=n)) for n in (1, 2, 3)}
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        visitor_days = (
            conn.execute(
                sa.text(
                    "select substr(updated_at, 1, 10) from visitors where id is null or id = ''"
                )
            )
            .scalars()
            .all()
        )
        event_days = (
            conn.execute(
                sa.text(
                    "select date(occurred_at / 1000, 'unixepoch') from events "
                    "where visitor_id is null or event_name = ''"
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert len(visitor_days) == 4 and set(visitor_days) <= recent
    assert len(event_days) == 4 and set(event_days) <= recent
