"""Column conversion into what Pendo's JSON accepts: epoch ms, identifiers, JSON scalars.

Columns come as the warehouse reader gives them (object columns of driver values) and as typed
pandas columns (numpy dtypes), and every converted value must be a plain Python JSON value.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pendo_assets.sync.convert import to_epoch_ms, to_identifiers, to_json_scalars

NOV_2 = 1_793_577_600_000  # 2026-11-02T00:00:00Z in epoch milliseconds
NOV_2_10H = NOV_2 + 10 * 3_600_000
PLUS_2 = timezone(timedelta(hours=2))
TIMESTAMP_REASON = "is not a timestamp (datetime, ISO-8601 text, or epoch)"
SCALAR_REASON = "value is not a JSON scalar (string, number, boolean or null)"
NULL = (type(None), None)
LATER = (int, NOV_2_10H)


def objects(*values: Any) -> pd.Series:
    """An object column, as the warehouse reader returns every column."""
    return pd.Series(list(values), dtype=object)


def exact(values: list[Any]) -> list[tuple[type, Any]]:
    """Values with their types, so 1 and 1.0 and True never pass for one another."""
    return [(type(v), v) for v in values]


# -- to_epoch_ms -------------------------------------------------------------------------------


def test_naive_datetimes_are_utc() -> None:
    converted = to_epoch_ms(
        pd.Series(pd.to_datetime(["2026-11-02 00:00:00", "2026-11-02 10:00:00"]))
    )
    assert exact(converted.values) == [(int, NOV_2), (int, NOV_2_10H)]
    assert converted.invalid.tolist() == [False, False]


def test_aware_datetimes_keep_their_instant() -> None:
    column = pd.Series(pd.to_datetime(["2026-11-02 12:00:00"]).tz_localize("Europe/Paris"))
    assert to_epoch_ms(column).values == [NOV_2_10H + 3_600_000]  # 12:00 CET is 11:00 UTC


def test_python_datetimes_and_dates_from_the_warehouse() -> None:
    converted = to_epoch_ms(
        objects(
            datetime(2026, 11, 2, 10),  # naive: UTC
            datetime(2026, 11, 2, 12, tzinfo=PLUS_2),
            date(2026, 11, 2),
            pd.Timestamp("2026-11-02T10:00:00Z"),
        )
    )
    assert exact(converted.values) == [(int, NOV_2_10H), (int, NOV_2_10H), (int, NOV_2), LATER]
    assert not converted.invalid.any()


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-02T10:00:00Z",
        "2026-11-02T12:00:00+02:00",
        "2026-11-02T05:00:00-05:00",
        "2026-11-02 10:00:00",  # no offset: UTC
        "2026-11-02T10:00:00.000+00:00",
    ],
)
def test_iso_text_with_offsets(text: str) -> None:
    converted = to_epoch_ms(objects(text))
    assert exact(converted.values) == [(int, NOV_2_10H)]
    assert converted.invalid.tolist() == [False]


def test_iso_dates_are_midnight_utc() -> None:
    assert to_epoch_ms(objects("2026-11-02")).values == [NOV_2]


def test_epoch_seconds_and_milliseconds_are_told_apart() -> None:
    seconds, millis = NOV_2_10H // 1000, NOV_2_10H
    assert to_epoch_ms(pd.Series([seconds, millis])).values == [NOV_2_10H, NOV_2_10H]
    assert to_epoch_ms(objects(seconds, millis)).values == [NOV_2_10H, NOV_2_10H]
    assert to_epoch_ms(pd.Series([seconds + 0.25])).values == [NOV_2_10H + 250]


def test_numeric_strings_are_epoch_numbers() -> None:
    converted = to_epoch_ms(
        objects(str(NOV_2_10H // 1000), str(NOV_2_10H), f" {NOV_2_10H // 1000} ")
    )
    assert exact(converted.values) == [(int, NOV_2_10H)] * 3


def test_garbage_missing_and_empty_values_are_invalid_with_the_reason() -> None:
    converted = to_epoch_ms(objects("yesterday", "", None, float("nan"), "2026-11-02"))
    assert converted.values == [None, None, None, None, NOV_2]
    assert converted.invalid.tolist() == [True, True, True, True, False]
    assert converted.reason == TIMESTAMP_REASON


def test_booleans_are_not_timestamps() -> None:
    assert to_epoch_ms(pd.Series([True, False])).invalid.tolist() == [True, True]
    assert to_epoch_ms(objects(True, NOV_2)).invalid.tolist() == [True, False]


def test_nat_is_invalid() -> None:
    converted = to_epoch_ms(pd.Series(pd.to_datetime(["2026-11-02", None])))
    assert (converted.values, converted.invalid.tolist()) == ([NOV_2, None], [False, True])


# -- to_identifiers ----------------------------------------------------------------------------


def test_integer_ids_become_text() -> None:
    converted = to_identifiers(pd.Series([7, 12345678901234567], dtype="int64"))
    assert exact(converted.values) == [(str, "7"), (str, "12345678901234567")]
    assert converted.invalid.tolist() == [False, False]


def test_integral_floats_of_null_widened_int_columns_lose_the_point_zero() -> None:
    converted = to_identifiers(pd.Series([1.0, np.nan, 3.0]))
    assert converted.values == ["1", None, "3"]
    assert converted.invalid.tolist() == [False, True, False]
    assert converted.reason == "identifier is missing or empty"


def test_fractional_float_ids_keep_their_digits() -> None:
    assert to_identifiers(pd.Series([1.5, 2.0])).values == ["1.5", "2"]


def test_nullable_integer_ids() -> None:
    converted = to_identifiers(pd.Series([4, None], dtype="Int64"))
    assert (converted.values, converted.invalid.tolist()) == (["4", None], [False, True])


def test_warehouse_object_ids_of_mixed_kinds() -> None:
    converted = to_identifiers(objects("v-1", 42, 7.0, None, Decimal("12")))
    assert converted.values == ["v-1", "42", "7", None, "12"]
    assert converted.invalid.tolist() == [False, False, False, True, False]


def test_empty_and_blank_ids_are_invalid_but_kept_as_given() -> None:
    converted = to_identifiers(objects("v-1", "", "   ", " v-2 "))
    assert converted.values == ["v-1", "", "   ", " v-2 "]
    assert converted.invalid.tolist() == [False, True, True, False]


def test_boolean_ids_are_invalid() -> None:
    assert to_identifiers(pd.Series([True, False])).invalid.tolist() == [True, True]
    assert to_identifiers(objects(True, "v-1")).invalid.tolist() == [True, False]


def test_infinite_float_ids_are_invalid_rather_than_a_crash() -> None:
    converted = to_identifiers(pd.Series([1.0, np.inf, -np.inf]))
    assert (converted.values, converted.invalid.tolist()) == (
        ["1", None, None],
        [False, True, True],
    )


# -- to_json_scalars ---------------------------------------------------------------------------


def test_numpy_scalars_become_plain_python_values() -> None:
    converted = to_json_scalars(objects(np.int64(3), np.float32(2.5), np.bool_(True), np.uint8(7)))
    assert exact(converted.values) == [(int, 3), (float, 2.5), (bool, True), (int, 7)]
    assert not converted.invalid.any()


def test_typed_columns_become_plain_python_values() -> None:
    assert exact(to_json_scalars(pd.Series([1, 2], dtype="int64")).values) == [(int, 1), (int, 2)]
    assert exact(to_json_scalars(pd.Series([True, False])).values) == [(bool, True), (bool, False)]
    assert exact(to_json_scalars(pd.Series([1.5, np.nan])).values) == [(float, 1.5), NULL]
    assert exact(to_json_scalars(pd.Series([3, None], dtype="Int64")).values) == [(int, 3), NULL]


def test_a_float_column_of_whole_numbers_and_nulls_is_integers() -> None:
    assert exact(to_json_scalars(pd.Series([2.0, np.nan])).values) == [(int, 2), NULL]


def test_missing_values_of_every_kind_become_null() -> None:
    converted = to_json_scalars(
        objects(None, float("nan"), np.nan, pd.NaT, pd.NA, np.datetime64("NaT"), Decimal("NaN"))
    )
    assert converted.values == [None] * 7
    assert not converted.invalid.any()


def test_warehouse_integers_stay_integers_beside_nulls() -> None:
    converted = to_json_scalars(objects(1, None, 12345678901234567))
    assert exact(converted.values) == [(int, 1), NULL, (int, 12345678901234567)]


def test_warehouse_mixed_numbers_keep_their_own_types() -> None:
    assert exact(to_json_scalars(objects(1, 2.5, True)).values) == [
        (int, 1),
        (float, 2.5),
        (bool, True),
    ]


def test_decimals_become_floats() -> None:
    converted = to_json_scalars(objects(Decimal("1200.50"), Decimal("3")))
    assert exact(converted.values) == [(float, 1200.5), (float, 3.0)]


@pytest.mark.parametrize("value", [float("inf"), -np.inf, Decimal("Infinity")])
def test_infinite_values_are_invalid_in_object_columns(value: Any) -> None:
    converted = to_json_scalars(objects(1, value))
    assert (converted.values, converted.invalid.tolist()) == ([1, None], [False, True])
    assert converted.reason == SCALAR_REASON


def test_infinite_values_are_invalid_in_float_columns() -> None:
    converted = to_json_scalars(pd.Series([1.5, np.inf, np.nan]))
    assert (converted.values, converted.invalid.tolist()) == (
        [1.5, None, None],
        [False, True, False],
    )
    assert converted.reason == "value is not a finite number"


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], (1,), {1}, b"bytes", timedelta(seconds=1)])
def test_values_that_are_not_json_scalars_are_invalid(value: Any) -> None:
    converted = to_json_scalars(objects("ok", value))
    assert (converted.values, converted.invalid.tolist()) == (["ok", None], [False, True])
    assert converted.reason == SCALAR_REASON


def test_datetimes_become_epoch_milliseconds() -> None:
    typed = to_json_scalars(pd.Series(pd.to_datetime(["2026-11-02 10:00:00", None])))
    assert (typed.values, typed.invalid.tolist()) == ([NOV_2_10H, None], [False, False])
    warehouse = to_json_scalars(
        objects(
            datetime(2026, 11, 2, 12, tzinfo=PLUS_2),
            datetime(2026, 11, 2, 10),
            date(2026, 11, 2),
            np.datetime64("2026-11-02T10:00:00.000000000"),
        )
    )
    assert exact(warehouse.values) == [(int, NOV_2_10H), (int, NOV_2_10H), (int, NOV_2), LATER]


def test_converted_values_are_strict_json() -> None:
    converted = to_json_scalars(
        objects(np.int64(1), np.float64("nan"), Decimal("2.5"), datetime(2026, 11, 2, tzinfo=UTC))
    )
    assert json.dumps(converted.values, allow_nan=False) == f"[1, null, 2.5, {NOV_2}]"
