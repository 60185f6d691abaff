"""Coercion to Pendo's declared field types: lossless conversions pass, the rest fail per row."""

from __future__ import annotations

from typing import Any

import pytest

from pendo_assets.client import FieldSchema, MetadataSchema
from pendo_assets.sync.prepare.field_types import coerce, missing_fields


def test_number_fields_take_numbers_and_numeric_text() -> None:
    result = coerce([42, 2.5, "17", " 3.0 ", None, "lots", True], "number")
    assert result.values == [42, 2.5, 17, 3.0, None, None, None]
    assert result.invalid.tolist() == [False, False, False, False, False, True, True]


def test_boolean_fields_take_booleans_zero_one_and_every_boolean_spelling() -> None:
    spellings = ["TRUE", "false", " yes ", "No", "t", "F", "1", "0"]
    result = coerce([True, 0, 1, *spellings, None], "boolean")
    assert result.values == [
        True,
        False,
        True,
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        None,
    ]
    assert not result.invalid.any()


@pytest.mark.parametrize("value", [2, 1.5, "lots", "x" * 600, "", "on"])
def test_boolean_fields_fail_what_spells_no_boolean(value: Any) -> None:
    result = coerce([value], "boolean")
    assert (result.values, result.invalid.tolist()) == ([None], [True])
    assert result.reason == "expects boolean: it is not a boolean (true/false, t/f, yes/no, 1/0)"


def test_number_fields_take_integer_text_exactly() -> None:
    result = coerce(["12345678901234567891", "-7", 2**64], "number")
    assert result.values == [12345678901234567891, -7, 2**64]
    assert [type(v) for v in result.values] == [int, int, int]


@pytest.mark.parametrize("text", ["0.12345678901234567891", "1e400", "NaN", "Infinity"])
def test_number_fields_fail_text_a_float_would_change(text: str) -> None:
    result = coerce([text], "number")
    assert (result.values, result.invalid.tolist()) == ([None], [True])


def test_time_fields_take_epochs_of_any_unit_and_fail_relative_text() -> None:
    ms = 1_768_469_400_000
    result = coerce([ms * 1000, ms // 1000, "now", "12:00", 1e300], "time")
    assert result.values == [ms, ms, None, None, None]
    assert result.invalid.tolist() == [False, False, True, True, True]
    assert result.reason_at(2) == (
        "expects a time: it is not an absolute instant (a relative word, or no date with a year)"
    )


def test_string_fields_take_text_numbers_and_booleans_as_text() -> None:
    result = coerce(["a", 7, 1.5, False, None], "string")
    assert result.values == ["a", "7", "1.5", "false", None]
    assert not result.invalid.any()


def test_time_fields_become_epoch_milliseconds() -> None:
    result = coerce(["2026-01-15T09:30:00Z", 1_768_469_400_000, "soon", None], "time")
    assert result.values == [1_768_469_400_000, 1_768_469_400_000, None, None]
    assert result.invalid.tolist() == [False, False, True, False]


def test_an_unknown_type_leaves_values_to_pendo() -> None:
    result = coerce([{"x": 1}, "a"], "list")
    assert result.values == [{"x": 1}, "a"]
    assert not result.invalid.any()


def test_missing_fields_lists_group_and_name() -> None:
    schema = MetadataSchema(
        kind="visitor",
        custom={"plan": FieldSchema("plan", "string", "custom")},
        agent={"email": FieldSchema("email", "string", "agent")},
    )
    wanted = {"custom": ["plan", "region"], "agent": ["email", "mail"]}
    assert missing_fields(schema, wanted) == ["custom.region", "agent.mail"]
