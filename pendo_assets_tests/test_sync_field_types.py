"""Coercion to Pendo's declared field types: lossless conversions pass, the rest fail per row."""

from __future__ import annotations

from pendo_assets.client import FieldSchema, MetadataSchema
from pendo_assets.sync.field_types import coerce, missing_fields


def test_number_fields_take_numbers_and_numeric_text() -> None:
    result = coerce([42, 2.5, "17", " 3.0 ", None, "lots", True], "number")
    assert result.values == [42, 2.5, 17, 3.0, None, None, None]
    assert result.invalid.tolist() == [False, False, False, False, False, True, True]


def test_boolean_fields_take_booleans_zero_one_and_true_false_text() -> None:
    result = coerce([True, 0, 1, "TRUE", "false", 2, "yes", None], "boolean")
    assert result.values == [True, False, True, True, False, None, None, None]
    assert result.invalid.tolist() == [False, False, False, False, False, True, True, False]


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
