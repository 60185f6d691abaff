"""Column-wise JSON encoding: byte for byte what `canonical_json` writes, so record hashes
never change between releases (a changed spelling would resend every record once)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendo_assets.sync.decide.change_detection import key_metadata
from pendo_assets.sync.decide.record_keys import canonical_json, digest
from pendo_assets.sync.prepare.json_columns import encoded, objects
from pendo_assets.sync.prepare.metadata_rows import prepare_metadata
from pendo_assets.sync.record.packed_hashes import hex_list
from pendo_assets.sync.spec import SourceSpec, SyncSpec

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
)


@given(st.lists(st.one_of(SCALARS, st.lists(SCALARS, max_size=3)), max_size=20))
def test_each_value_is_spelled_exactly_as_canonical_json_spells_it(values: list[Any]) -> None:
    assert encoded(values) == [canonical_json(value) for value in values]


@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), SCALARS, min_size=1))
def test_a_row_object_is_the_canonical_json_of_the_row(row: dict[str, Any]) -> None:
    names = list(row)
    columns = [encoded([row[name]]) for name in names]

    assert objects(names, columns) == [canonical_json(row)]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_request_body_refuses_a_number_json_has_no_form_for(value: float) -> None:
    with pytest.raises(ValueError, match="no JSON form"):
        encoded([1.5, value], strict=True)


def test_metadata_payloads_and_hashes_are_those_of_earlier_releases() -> None:
    spec = SyncSpec(
        name="visitors",
        object_type="visitor_metadata",
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "plan": "plan", "seats": "seats", "email": "agent.email"},
    )
    frame = pd.DataFrame(
        {"id": ["v-1", "v-2"], "plan": ["pró", None], "seats": [3, 40], "email": ["a@x", "b@x"]},
        dtype=object,
    )

    keyed = key_metadata(prepare_metadata(spec, frame))

    # What releases before column-wise encoding built: one canonical_json call per row.
    bodies = [
        {"agent": {"email": "a@x"}, "custom": {"plan": "pró", "seats": 3}},
        {"agent": {"email": "b@x"}, "custom": {"plan": None, "seats": 40}},
    ]
    assert keyed.payloads == [canonical_json(body) for body in bodies]
    assert hex_list(keyed.hashes) == [digest(canonical_json(body)) for body in bodies]
    assert keyed.hashes[:16].hex() == "77ac2384ad183e7faac5866c1ce0f43c"  # pinned: field state


ONE_GROUP = SyncSpec(
    name="visitors",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={"id": "visitorId", "plan": "plan", "seats": "seats", "ratio": "share"},
)


def _one_group_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"id": ["v-1", "v-2", "v-1"], "plan": ["old", None, 'pró "x"'], "seats": [3, 40, 5]}
        | {"ratio": [0.5, True, 1]},
        dtype=object,
    )


def test_a_one_group_payload_is_the_canonical_json_of_its_row() -> None:
    prepared = prepare_metadata(ONE_GROUP, _one_group_frame())

    assert key_metadata(prepared).payloads == [
        canonical_json({"custom": {"plan": None, "seats": 40, "share": True}}),
        canonical_json({"custom": {"plan": 'pró "x"', "seats": 5, "share": 1}}),
    ]


def test_the_request_text_of_a_group_is_its_object_within_the_payload() -> None:
    prepared = prepare_metadata(ONE_GROUP, _one_group_frame())
    payloads = key_metadata(prepared).payloads

    assert prepared.group_json("custom") == [
        canonical_json({"plan": None, "seats": 40, "share": True}),
        canonical_json({"plan": 'pró "x"', "seats": 5, "share": 1}),
    ]
    assert payloads[1] == '{"custom":' + prepared.group_json("custom")[1] + "}"


def test_coerced_values_are_sent_while_the_hash_stays_that_of_the_warehouse_values() -> None:
    prepared = prepare_metadata(ONE_GROUP, _one_group_frame())
    keyed = key_metadata(prepared)
    prepared.custom["seats"] = ["3", "40", "5"]  # what apply_schema does for a text field
    prepared.values_changed("custom")

    assert prepared.group_json("custom")[1] == canonical_json(
        {"plan": 'pró "x"', "seats": "5", "share": 1}
    )
    assert keyed.payloads[1] == canonical_json(
        {"custom": {"plan": 'pró "x"', "seats": 5, "share": 1}}
    )
