"""Column conversion into what Pendo's JSON accepts: epoch ms, identifiers, JSON scalars.

Columns come as the warehouse reader gives them (object columns of driver values) and as typed
pandas columns (numpy dtypes), and every converted value must be a plain Python JSON value.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pendo_assets.sync.prepare.convert import to_epoch_ms, to_identifiers, to_json_scalars
from pendo_assets.sync.prepare.scalar_values import not_scalar
from pendo_assets.sync.source.boolean_spellings import NotABoolean

NOV_2 = 1_793_577_600_000  # 2026-11-02T00:00:00Z in epoch milliseconds
NOV_2_10H = NOV_2 + 10 * 3_600_000
PLUS_2 = timezone(timedelta(hours=2))
TIMESTAMP_REASON = "is not a timestamp (datetime, ISO-8601 text, or epoch)"
SCALAR_REASON = "value is not a JSON scalar (string, number, boolean or null)"
BYTES_REASON = "value is bytes, which have no JSON form (cast them to text in the query)"
UUID_1 = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")
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
    converted = to_epoch_ms(objects("soon 2026", "", None, float("nan"), "2026-11-02"))
    assert converted.values == [None, None, None, None, NOV_2]
    assert converted.invalid.tolist() == [True, True, True, True, False]
    assert converted.reason == TIMESTAMP_REASON
    assert converted.reasons == {1: "is missing", 2: "is missing", 3: "is missing"}


def test_epoch_microseconds_and_nanoseconds_are_told_apart_by_magnitude() -> None:
    micros, nanos = NOV_2_10H * 1000, NOV_2_10H * 1_000_000
    assert to_epoch_ms(pd.Series([micros, nanos])).values == [NOV_2_10H, NOV_2_10H]
    assert to_epoch_ms(objects(micros, nanos, str(micros))).values == [NOV_2_10H] * 3


@pytest.mark.parametrize(
    "text", ["now", "Today", "yesterday", "tomorrow", "2 days ago", "12:00", "9:30 pm", "Nov 2"]
)
def test_text_that_is_no_absolute_instant_fails_instead_of_reading_the_clock(text: str) -> None:
    converted = to_epoch_ms(objects(text))
    assert (converted.values, converted.invalid.tolist()) == ([None], [True])
    assert converted.reasons == {
        0: "is not an absolute instant (a relative word, or no date with a year)"
    }


@pytest.mark.parametrize("value", [1e300, float("inf"), -np.inf, 10**30, Decimal("1e400")])
def test_numbers_of_no_epoch_unit_fail_their_row_rather_than_the_run(value: Any) -> None:
    converted = to_epoch_ms(objects(NOV_2, value))
    assert (converted.values, converted.invalid.tolist()) == ([NOV_2, None], [False, True])
    assert converted.reasons == {
        1: "is a number of no epoch unit (seconds to nanoseconds), or not finite"
    }


def test_typed_columns_of_no_epoch_unit_fail_their_rows() -> None:
    converted = to_epoch_ms(pd.Series([float(NOV_2), np.inf, 1e300]))
    assert (converted.values, converted.invalid.tolist()) == (
        [NOV_2, None, None],
        [False, True, True],
    )


def test_instants_beyond_pandas_range_convert_exactly() -> None:
    converted = to_epoch_ms(objects(datetime(9999, 12, 31, tzinfo=UTC), date(1, 1, 1)))
    assert converted.values == [253_402_214_400_000, -62_135_596_800_000]


def test_epoch_seconds_before_year_one_are_out_of_range() -> None:
    converted = to_epoch_ms(objects(-99_000_000_000))
    assert converted.reasons == {0: "is outside the years 1 to 9999"}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([1], "is a list, not a timestamp"),
        (b"2026", "is a bytes, not a timestamp"),
        ("2026-11-02 \ud800", "is text that is not valid UTF-8 (a lone surrogate)"),
    ],
)
def test_values_of_no_timestamp_kind_fail_with_the_reason(value: Any, reason: str) -> None:
    assert to_epoch_ms(objects(value)).reasons == {0: reason}


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
    assert converted.reason == "is missing or empty"


def test_fractional_float_ids_fail_rather_than_becoming_text() -> None:
    converted = to_identifiers(pd.Series([1.5, 2.0]))
    assert (converted.values, converted.invalid.tolist()) == ([None, "2"], [True, False])
    assert converted.reasons == {0: "1.5 is not a whole number"}


def test_nullable_integer_ids() -> None:
    converted = to_identifiers(pd.Series([4, None], dtype="Int64"))
    assert (converted.values, converted.invalid.tolist()) == (["4", None], [False, True])


def test_warehouse_object_ids_of_mixed_kinds() -> None:
    converted = to_identifiers(objects("v-1", 42, 7.0, None, Decimal("12")))
    assert converted.values == ["v-1", "42", "7", None, "12"]
    assert converted.invalid.tolist() == [False, False, False, True, False]


def test_ids_are_stripped_and_blank_ids_are_missing() -> None:
    converted = to_identifiers(objects("v-1", "", "   ", " v-2 ", "v-1\t"))
    assert converted.values == ["v-1", None, None, "v-2", "v-1"]
    assert converted.invalid.tolist() == [False, True, True, False, False]
    assert (converted.reason, converted.reasons) == ("is missing or empty", {})


def test_text_ids_none_of_them_blank_are_stripped_and_all_valid() -> None:
    converted = to_identifiers(objects(" v-1", "v-2\n", "v-3"))
    assert converted.values == ["v-1", "v-2", "v-3"]
    assert converted.invalid.tolist() == [False, False, False]


def test_whole_decimal_ids_and_uuids_are_their_exact_text() -> None:
    converted = to_identifiers(
        objects(Decimal("42.00"), Decimal("1E+2"), 2**70, UUID_1, np.int64(-3))
    )
    assert converted.values == ["42", "100", str(2**70), str(UUID_1), "-3"]
    assert not converted.invalid.any()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (["a", "b"], "is a list, not text or an integer"),
        ({"a": 1}, "is a dict, not text or an integer"),
        (("a",), "is a tuple, not text or an integer"),
        (b"abc", "is a bytes, not text or an integer"),
        (Decimal("42.5"), "42.5 is not a whole number"),
        (Decimal("Infinity"), "Infinity is not a finite number"),
        (True, "is a boolean, not text or an integer"),
        ("bad \ud800", "is text that is not valid UTF-8 (a lone surrogate)"),
    ],
)
def test_values_that_are_no_identifier_fail_with_the_reason(value: Any, reason: str) -> None:
    converted = to_identifiers(objects("v-1", value))
    assert (converted.values, converted.invalid.tolist()) == (["v-1", None], [False, True])
    assert converted.reasons == {1: reason}


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


def test_whole_decimals_become_exact_integers() -> None:
    converted = to_json_scalars(
        objects(Decimal("3"), Decimal("12345678901234567891"), Decimal("1E+3"))
    )
    assert exact(converted.values) == [(int, 3), (int, 12345678901234567891), (int, 1000)]


def test_fractional_decimals_become_floats_when_the_float_is_exact() -> None:
    converted = to_json_scalars(objects(Decimal("1200.50"), Decimal("0.1")))
    assert exact(converted.values) == [(float, 1200.5), (float, 0.1)]


def test_fractional_decimals_a_float_would_change_stay_their_own_text() -> None:
    converted = to_json_scalars(objects(Decimal("0.12345678901234567891"), Decimal("1E-400")))
    assert exact(converted.values) == [(str, "0.12345678901234567891"), (str, "1E-400")]
    assert not converted.invalid.any()


@pytest.mark.parametrize("value", [Decimal("1e400"), Decimal("-1e400"), 10**400])
def test_numbers_beyond_a_floats_range_fail(value: Any) -> None:
    converted = to_json_scalars(objects(1, value))
    assert (converted.values, converted.invalid.tolist()) == ([1, None], [False, True])
    assert converted.reasons == {1: "value is not a finite number"}


def test_integers_past_two_to_the_53_stay_exact() -> None:
    converted = to_json_scalars(objects(2**53 + 1, np.uint64(2**64 - 1)))
    assert exact(converted.values) == [(int, 2**53 + 1), (int, 2**64 - 1)]


def test_uuids_and_ip_addresses_become_their_canonical_text() -> None:
    converted = to_json_scalars(
        objects(
            UUID_1,
            ipaddress.ip_address("10.0.0.1"),
            ipaddress.ip_interface("10.0.0.1/24"),
            ipaddress.ip_network("2001:db8::/32"),
        )
    )
    assert converted.values == [str(UUID_1), "10.0.0.1", "10.0.0.1/24", "2001:db8::/32"]
    assert not converted.invalid.any()


def test_times_of_day_become_iso_text() -> None:
    converted = to_json_scalars(objects(time(9, 30), time(23, 59, 59, 250_000, tzinfo=PLUS_2)))
    assert converted.values == ["09:30:00", "23:59:59.250000+02:00"]


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=1), "PT1S"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=500), "P1DT2H3M4.5S"),
        (timedelta(days=3), "P3D"),
        (timedelta(0), "PT0S"),
        (-timedelta(minutes=90), "-PT1H30M"),
        (np.timedelta64(1500, "ms"), "PT1.5S"),
    ],
)
def test_durations_become_iso_8601_duration_text(delta: Any, text: str) -> None:
    assert to_json_scalars(objects(delta)).values == [text]


def test_text_that_is_not_valid_utf8_fails() -> None:
    converted = to_json_scalars(objects("ok", "bad \ud800"))
    assert (converted.values, converted.invalid.tolist()) == (["ok", None], [False, True])
    assert converted.reasons == {1: "value is text that is not valid UTF-8 (a lone surrogate)"}


def test_a_value_that_spells_no_boolean_fails_with_the_value() -> None:
    converted = to_json_scalars(objects(True, NotABoolean("lots")))
    assert (converted.values, converted.invalid.tolist()) == ([True, None], [False, True])
    assert converted.reasons == {1: "value 'lots' is not a boolean (true/false, t/f, yes/no, 1/0)"}


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


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"a": 1}, not_scalar("dict")),
        ([1, 2], not_scalar("list")),
        ((1,), not_scalar("tuple")),
        ({1}, not_scalar("set")),
        (b"bytes", BYTES_REASON),
        (bytearray(b"x"), BYTES_REASON),
        (memoryview(b"x"), BYTES_REASON),
    ],
)
def test_values_that_are_not_json_scalars_fail_with_the_reason(value: Any, reason: str) -> None:
    converted = to_json_scalars(objects("ok", value))
    assert (converted.values, converted.invalid.tolist()) == (["ok", None], [False, True])
    assert converted.reasons == {1: reason}


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
