"""State written by an earlier release (one `pendo_sync_state` table repeating destination and
sync name per record) is carried over to the compact tables on first use: nothing is sent
again because of an upgrade, and the old name still answers queries, as a view."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pendo_assets.sync.decide.record_keys import digest
from pendo_assets.sync.record.state_store import StateStore, state_engine
from pendo_assets.sync.record.state_tables import STATE_TABLES
from pendo_assets.sync.record.table_setup import create_tables_safely
from pendo_assets_tests.state_databases import BACKENDS, StateDatabases, open_databases, race

US = "https://app.pendo.example#0123456789abcdef"
EU = "https://app.eu.pendo.example#fedcba9876543210"

# `pendo_sync_state` as the release before the compact layout created it.
PREVIOUS_TABLE = (
    "CREATE TABLE pendo_sync_state (destination VARCHAR(300) NOT NULL, "
    "sync_name VARCHAR(200) NOT NULL, record_key VARCHAR(512) NOT NULL, "
    "payload_hash VARCHAR(64) NOT NULL, payload TEXT, run_id VARCHAR(64) NOT NULL, "
    "accepted_at TIMESTAMP WITH TIME ZONE NOT NULL, "
    "PRIMARY KEY (destination, sync_name, record_key))"
)
OLD_ROWS = [
    (US, "visitors", "v-1", digest("v-1 payload"), '{"custom":{"plan":"pro"}}', "run-a"),
    (US, "visitors", "v-2", digest("v-2 payload"), None, "run-b"),
    (US, "accounts", "a-1", digest("a-1 payload"), None, "run-a"),
    (EU, "visitors", "v-1", digest("v-1 in the EU"), None, "run-c"),
]


def write_previous_release_state(engine: sa.Engine, rows: list[tuple[Any, ...]]) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(PREVIOUS_TABLE)
        for row in rows:
            connection.execute(
                sa.text(
                    "INSERT INTO pendo_sync_state VALUES (:d, :s, :k, :h, :p, :r, "
                    "'2026-11-29 10:00:00+00:00')"
                ),
                dict(zip("dskhpr", row, strict=True)),
            )


def state_rows(engine: sa.Engine) -> set[tuple[Any, ...]]:
    with engine.connect() as connection:
        return set(
            connection.exec_driver_sql(
                "SELECT destination, sync_name, record_key, payload_hash, payload, run_id "
                "FROM pendo_sync_state"
            ).all()
        )


def test_records_of_the_previous_layout_are_found_with_their_hash_payload_and_run(
    state_on_each_backend: StateStore,
) -> None:
    store = state_on_each_backend
    write_previous_release_state(store.engine, OLD_ROWS)

    visitors = store.scope(US, "visitors")

    assert visitors.known(["v-1", "v-2", "a-1"]) == {
        "v-1": digest("v-1 payload"),
        "v-2": digest("v-2 payload"),
    }
    assert visitors.payloads(["v-1", "v-2"]) == {"v-1": '{"custom":{"plan":"pro"}}'}
    assert store.scope(US, "accounts").known(["a-1"]) == {"a-1": digest("a-1 payload")}
    assert store.scope(EU, "visitors").known(["v-1"]) == {"v-1": digest("v-1 in the EU")}
    assert state_rows(store.engine) == set(OLD_ROWS)


def test_the_old_table_gives_way_to_a_view_of_the_same_name(
    state_on_each_backend: StateStore,
) -> None:
    store = state_on_each_backend
    write_previous_release_state(store.engine, OLD_ROWS)

    store.scope(US, "visitors").record("run-d", [("v-3", digest("v-3"), None)])

    inspector = sa.inspect(store.engine)
    assert "pendo_sync_state" not in inspector.get_table_names()
    assert "pendo_sync_state" in inspector.get_view_names()
    assert (US, "visitors", "v-3", digest("v-3"), None, "run-d") in state_rows(store.engine)


def test_a_new_state_database_has_the_view_too(state_on_each_backend: StateStore) -> None:
    store = state_on_each_backend

    store.scope(US, "visitors").record("run-1", [("v-1", digest("v-1"), None)])

    assert state_rows(store.engine) == {(US, "visitors", "v-1", digest("v-1"), None, "run-1")}


def test_an_old_hash_that_is_not_hex_matches_nothing_so_its_record_goes_out_once_more(
    state_on_each_backend: StateStore,
) -> None:
    store = state_on_each_backend
    write_previous_release_state(store.engine, [(US, "visitors", "v-1", "not hex", None, "r")])

    found = store.scope(US, "visitors").known(["v-1"])

    assert found == {"v-1": b"not hex".hex()}
    assert found["v-1"] != digest("anything")


@pytest.fixture
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateDatabases]:
    yield from open_databases(request, tmp_path)


def engines_on_a_new_database(databases: StateDatabases, count: int) -> list[sa.Engine]:
    """`count` engines ("processes") on one new, empty state database."""
    factory = databases.new()
    if databases.backend != "sqlite":
        return [factory() for _ in range(count)]
    url = factory().url.render_as_string(hide_password=False)
    return [state_engine(url) for _ in range(count)]  # WAL and BEGIN IMMEDIATE, as in runs


def open_at_once(
    engines: list[sa.Engine], destination: str, sync: str
) -> list[tuple[int, dict[str, str]]]:
    """Each engine's StateStore opens the scope at the same moment: (scope id, known)."""
    opened: list[tuple[int, dict[str, str]]] = []

    def open_state(engine: sa.Engine) -> None:
        scope = StateStore(engine).scope(destination, sync)
        opened.append((scope.scope_id, scope.known(["v-1", "v-2"])))

    assert race(*(partial(open_state, engine) for engine in engines)) == []
    return opened


@BACKENDS
def test_processes_upgrading_the_same_database_at_once_copy_each_record_once(
    databases: StateDatabases,
) -> None:
    for _ in range(3):
        engines = engines_on_a_new_database(databases, 4)
        write_previous_release_state(engines[0], OLD_ROWS)

        results = open_at_once(engines, US, "visitors")

        found = {"v-1": digest("v-1 payload"), "v-2": digest("v-2 payload")}
        assert [known for _, known in results] == [found] * 4, results
        assert len({scope_id for scope_id, _ in results}) == 1
        assert state_rows(engines[0]) == set(OLD_ROWS)
        with engines[0].connect() as connection:  # copied once: one write per old run and scope
            count = "SELECT count(*) FROM {}"
            assert connection.exec_driver_sql(count.format("pendo_sync_records")).scalar() == 4
            assert connection.exec_driver_sql(count.format("pendo_sync_writes")).scalar() == 4
        for engine in engines:
            engine.dispose()


@BACKENDS
def test_processes_opening_a_new_state_database_at_once_share_one_scope_and_the_view(
    databases: StateDatabases,
) -> None:
    for _ in range(3):
        engines = engines_on_a_new_database(databases, 4)

        results = open_at_once(engines, US, "visitors")

        assert [known for _, known in results] == [{}] * 4, results
        assert len({scope_id for scope_id, _ in results}) == 1
        assert "pendo_sync_state" in sa.inspect(engines[0]).get_view_names()
        for engine in engines:
            engine.dispose()


def test_an_upgrade_that_fails_half_way_leaves_the_old_table_as_it_was(tmp_path: Path) -> None:
    engine = state_engine(f"sqlite:///{tmp_path / 'state.db'}")
    write_previous_release_state(engine, OLD_ROWS)
    create_tables_safely(engine, STATE_TABLES)
    with engine.begin() as connection:  # the copy fails at its last statement (disk full)
        connection.exec_driver_sql(
            "CREATE TRIGGER full BEFORE INSERT ON pendo_sync_records "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )

    with pytest.raises(sa.exc.DBAPIError, match="disk is full"):
        StateStore(engine).scope(US, "visitors")

    assert "pendo_sync_state" in sa.inspect(engine).get_table_names()
    assert state_rows(engine) == set(OLD_ROWS)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM pendo_sync_scopes").scalar() == 0
    engine.dispose()
