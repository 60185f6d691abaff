"""What a write of accepted records leaves in `pendo_sync_state`, on SQLite and PostgreSQL: rows
go in as one statement per block, and the table holds exactly what each row said."""

from __future__ import annotations

from typing import Any

import pytest

from pendo_assets.sync.decide.record_keys import digest
from pendo_assets.sync.record.state_store import (
    LOOKUP_CHUNK,
    MAX_PLAIN_KEY,
    WRITE_CHUNK,
    Accepted,
    AcceptedRows,
    Changes,
    StateScope,
    StateStore,
    stored_key,
)

DESTINATION = "https://app.pendo.example#0123456789abcdef"


def h(label: object) -> str:
    """A payload hash as the engine makes them (32 hex characters), named by `label`."""
    return digest(str(label))


@pytest.fixture
def store(state_on_each_backend: StateStore) -> StateStore:
    return state_on_each_backend


def stored_rows(scope: StateScope) -> dict[str, tuple[Any, ...]]:
    """record key -> (hash, payload, run id) as the table holds them."""
    with scope.store.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT record_key, payload_hash, payload, run_id FROM pendo_sync_state"
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_each_accepted_row_is_stored_with_its_hash_payload_and_run(store: StateStore) -> None:
    scope = store.scope(DESTINATION, "visitors")
    payloads = ['{"custom":{"plan":"pro"}}', '{"custom":{"quote":"say \\"hi\\""}}']

    written = scope.record(
        "run-7", [Accepted("v-1", h(1), payloads[0]), ("v-2", h(2), payloads[1])]
    )

    assert written == 2
    assert stored_rows(scope) == {
        "v-1": (h(1), payloads[0], "run-7"),
        "v-2": (h(2), payloads[1], "run-7"),
    }


def test_event_rows_without_a_payload_store_null(store: StateStore) -> None:
    scope = store.scope(DESTINATION, "events")

    scope.record("run-1", [("ev:a", h(1), None), ("ev:b", h(2), None)])

    assert stored_rows(scope) == {"ev:a": (h(1), None, "run-1"), "ev:b": (h(2), None, "run-1")}


def test_a_key_accepted_twice_in_one_write_keeps_its_last_hash_and_payload(
    store: StateStore,
) -> None:
    scope = store.scope(DESTINATION, "visitors")

    scope.record_parts(
        "run-1", [[("v-1", h("old"), "{}"), ("v-2", h(2), "{}")], [("v-1", h("new"), '{"a":1}')]]
    )

    assert stored_rows(scope) == {
        "v-1": (h("new"), '{"a":1}', "run-1"),
        "v-2": (h(2), "{}", "run-1"),
    }


def test_a_write_larger_than_one_statement_stores_every_row(store: StateStore) -> None:
    scope = store.scope(DESTINATION, "visitors")
    rows = WRITE_CHUNK + 3
    keys = [f"v-{i}" for i in range(rows)]
    hashes = [h(i) for i in range(rows)]

    written = scope.record("run-1", AcceptedRows(keys, hashes, None, list(range(rows))))

    assert written == rows == scope.count()
    assert scope.known([keys[0], keys[WRITE_CHUNK - 1], keys[WRITE_CHUNK], keys[-1]]) == {
        keys[0]: h(0),
        keys[WRITE_CHUNK - 1]: h(WRITE_CHUNK - 1),
        keys[WRITE_CHUNK]: h(WRITE_CHUNK),
        keys[-1]: h(rows - 1),
    }


@pytest.mark.parametrize(
    "bad", ["h2", h(2).upper()[:31], h(2)[:28] + " " + h(2)[28:30] + " ", "z" * 32], ids=str
)
def test_a_hash_that_is_not_32_hex_characters_is_refused_and_nothing_is_written(
    store: StateStore, bad: str
) -> None:
    scope = store.scope(DESTINATION, "visitors")

    with pytest.raises(ValueError, match="payload hashes must be 32 hex characters each"):
        scope.record("run-1", [("v-1", h(1), None), ("v-2", bad, None)])

    assert scope.count() == 0


def test_a_rewrite_replaces_hash_payload_and_run(store: StateStore) -> None:
    scope = store.scope(DESTINATION, "visitors")
    scope.record("run-1", [("v-1", h(1), '{"a":1}')])

    scope.record("run-2", [("v-1", h(2), '{"a":2}')])

    assert stored_rows(scope) == {"v-1": (h(2), '{"a":2}', "run-2")}


def test_keys_beyond_the_plain_length_are_stored_as_their_hash_and_found_by_the_key(
    store: StateStore,
) -> None:
    scope = store.scope(DESTINATION, "visitors")
    long_key = "v" * (MAX_PLAIN_KEY + 1)

    scope.record("run-1", [(long_key, h(1), "{}"), ("ünïcode ✓", h(2), "{}")])

    assert set(stored_rows(scope)) == {stored_key(long_key), "ünïcode ✓"}
    assert scope.known([long_key, "ünïcode ✓"]) == {long_key: h(1), "ünïcode ✓": h(2)}


def test_rows_of_another_sync_or_destination_are_left_alone(store: StateStore) -> None:
    mine = store.scope(DESTINATION, "visitors")
    other_sync = store.scope(DESTINATION, "accounts")
    other_destination = store.scope("https://eu.pendo.example#fedcba9876543210", "visitors")
    other_sync.record("run-0", [("v-1", h("other-sync"), "{}")])
    other_destination.record("run-0", [("v-1", h("other-destination"), "{}")])

    mine.record("run-1", [("v-1", h("mine"), "{}")])

    assert mine.known(["v-1"]) == {"v-1": h("mine")}
    assert other_sync.known(["v-1"]) == {"v-1": h("other-sync")}
    assert other_destination.known(["v-1"]) == {"v-1": h("other-destination")}


def test_a_lookup_finds_keys_with_quotes_backslashes_and_unicode_and_only_those_stored(
    store: StateStore,
) -> None:
    scope = store.scope(DESTINATION, "visitors")
    odd = ['v"1', "v\\2", "v 3 ✓", "{}", "null"]
    scope.record("run-1", [(key, h(i), "{}") for i, key in enumerate(odd)])

    found = scope.known([*odd, "v-absent"])

    assert found == {key: h(i) for i, key in enumerate(odd)}


def test_a_lookup_of_more_keys_than_one_query_finds_each(store: StateStore) -> None:
    scope = store.scope(DESTINATION, "visitors")
    rows = LOOKUP_CHUNK + 3
    keys = [f"v-{i}" for i in range(rows)]
    hashes = [h(key) for key in keys]
    scope.record("run-1", AcceptedRows(keys, hashes, None, list(range(0, rows, 2))))

    found = scope.known(keys)

    assert found == {key: h(key) for key in keys[::2]}


def test_stored_payloads_are_read_only_where_one_was_kept(store: StateStore) -> None:
    scope = store.scope(DESTINATION, "visitors")
    scope.record("run-1", [("v-1", h(1), '{"custom":{"plan":"pro"}}'), ("v-2", h(2), None)])

    assert scope.payloads(["v-1", "v-2", "v-3"]) == {"v-1": '{"custom":{"plan":"pro"}}'}
    assert scope.known(["v-1", "v-2", "v-3"]) == {"v-1": h(1), "v-2": h(2)}


def test_changes_give_the_indexes_of_new_and_changed_keys_and_leave_unchanged_ones_out(
    store: StateStore,
) -> None:
    scope = store.scope(DESTINATION, "visitors")
    scope.record("run-1", [("v-same", h("same"), None), ("v-edit", h("before"), None)])

    changes = scope.changes(["v-new", "v-same", "v-edit"], [h("x"), h("same"), h("after")])

    assert changes == Changes(new=[0], changed=[2])


def test_changes_of_more_keys_than_one_query_count_indexes_from_the_first_key(
    store: StateStore,
) -> None:
    scope = store.scope(DESTINATION, "visitors")
    rows = LOOKUP_CHUNK + 3
    keys = [f"v-{i}" for i in range(rows)]
    stored = list(range(0, rows, 2))  # every other key accepted before
    scope.record("run-1", AcceptedRows(keys, [h(k) for k in keys], None, stored))
    edited = {LOOKUP_CHUNK - 2, LOOKUP_CHUNK + 2}  # stored keys, one in each query
    hashes = [h(f"{k} edited") if i in edited else h(k) for i, k in enumerate(keys)]

    changes = scope.changes(keys, hashes)

    assert sorted(changes.new) == list(range(1, rows, 2))
    assert sorted(changes.changed) == sorted(edited)


def test_changes_find_keys_beyond_the_plain_length_and_odd_keys(store: StateStore) -> None:
    scope = store.scope(DESTINATION, "visitors")
    odd = ["v" * (MAX_PLAIN_KEY + 1), 'v"1', "v\\2", "ünïcode ✓", "null"]
    scope.record("run-1", [(key, h(key), None) for key in odd])

    changes = scope.changes([*odd, "v-absent"], [h(key) for key in [*odd, "v-absent"]])

    assert changes == Changes(new=[5], changed=[])


def test_changes_in_a_scope_with_nothing_stored_name_every_key_new(store: StateStore) -> None:
    scope = store.scope(DESTINATION, "visitors")
    store.scope(DESTINATION, "accounts").record("run-1", [("v-1", h("v-1"), None)])
    keys = [f"v-{i}" for i in range(LOOKUP_CHUNK + 3)]

    changes = scope.changes(keys, [h(key) for key in keys])

    assert changes == Changes(new=list(range(LOOKUP_CHUNK + 3)), changed=[])
