"""Metadata writes and the schema endpoint, as Pendo answers them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pendo_assets.sandbox import SandboxServer

VISITOR_CUSTOM = "/api/v1/metadata/visitor/custom/value"
JSON_HEADERS = {"content-type": "application/json"}


@pytest.fixture
def pendo(sandbox_http: httpx.Client, integration_key: str) -> httpx.Client:
    """The sandbox client carrying the integration key."""
    sandbox_http.headers["x-pendo-integration-key"] = integration_key
    return sandbox_http


def write(
    pendo: httpx.Client, records: Any, *, path: str = VISITOR_CUSTOM, create: bool = True
) -> httpx.Response:
    params = {"create": "true"} if create else {}
    content = json.dumps(records).encode()  # not json=: httpx sends no body for None
    return pendo.post(path, content=content, params=params, headers=JSON_HEADERS)


def stored(sandbox: SandboxServer, kind: str = "visitor") -> dict[str, Any]:
    return sandbox.state(requests=False)["metadata"][kind]


def test_create_true_creates_visitors_with_their_values(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    response = write(pendo, [{"visitorId": "v-1", "values": {"plan": "pro", "seats": 42}}])
    assert response.status_code == 200
    assert response.json() == {"total": 1, "updated": 1, "failed": 0, "missing": [], "errors": []}
    assert stored(sandbox) == {"v-1": {"custom": {"plan": "pro", "seats": 42}, "agent": {}}}


def test_without_create_unknown_ids_are_missing_and_not_created(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    response = write(pendo, [{"visitorId": "v-new", "values": {"plan": "pro"}}], create=False)
    assert response.json() == {
        "total": 1,
        "updated": 0,
        "failed": 0,
        "missing": ["v-new"],
        "errors": [],
    }
    assert stored(sandbox) == {}


def test_missing_names_each_unknown_id_once_in_batch_order(pendo: httpx.Client) -> None:
    ids = ["v-b", "v-a", "v-b", "v-c", "v-a"]
    records = [{"visitorId": visitor, "values": {"plan": "pro"}} for visitor in ids]
    body = write(pendo, records, create=False).json()
    assert (body["updated"], body["failed"], body["missing"]) == (0, 0, ["v-b", "v-a", "v-c"])


def test_state_keeps_ids_in_creation_order_and_fields_in_first_write_order(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    write(pendo, [{"visitorId": "v-2", "values": {"seats": 1}}])
    write(
        pendo,
        [{"visitorId": "v-1", "values": {"email": "a@example.com"}}],
        path="/api/v1/metadata/visitor/agent/value",
    )
    write(pendo, [{"visitorId": "v-2", "values": {"plan": "pro", "seats": 2}}])
    write(pendo, [{"visitorId": "v-1", "values": {"is_trial": True, "plan": "free"}}])
    visitors = stored(sandbox)
    assert list(visitors) == ["v-2", "v-1"]
    assert list(visitors["v-2"]) == list(visitors["v-1"]) == ["custom", "agent"]
    assert list(visitors["v-2"]["custom"].items()) == [("seats", 2), ("plan", "pro")]
    assert list(visitors["v-1"]["custom"].items()) == [("is_trial", True), ("plan", "free")]
    assert visitors["v-1"]["agent"] == {"email": "a@example.com"}


def test_without_create_known_ids_are_updated_and_values_merge(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    write(pendo, [{"visitorId": "v-1", "values": {"plan": "free", "seats": 1}}])
    response = write(pendo, [{"visitorId": "v-1", "values": {"plan": "pro"}}], create=False)
    assert response.json()["updated"] == 1
    assert stored(sandbox)["v-1"]["custom"] == {"plan": "pro", "seats": 1}


def test_unknown_field_and_wrong_type_fail_only_their_own_record(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    write(pendo, [{"visitorId": "v-known", "values": {}}])
    records = [
        {"visitorId": "v-ok", "values": {"plan": "pro", "is_trial": False}},
        {"visitorId": "v-typo", "values": {"plan": "pro", "colour": "red"}},
        {"visitorId": "v-badtype", "values": {"plan": "pro", "seats": "42"}},
        {"visitorId": "v-known", "values": {"seats": 7.5}},
    ]
    response = write(pendo, records, create=False)
    body = response.json()
    assert (body["total"], body["updated"], body["failed"]) == (4, 1, 2)
    assert body["missing"] == ["v-ok"]  # known ids only: v-ok was never created
    assert len(body["errors"]) == 2
    assert stored(sandbox) == {"v-known": {"custom": {"seats": 7.5}, "agent": {}}}


def test_failed_record_changes_nothing_even_for_its_valid_values(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    write(pendo, [{"visitorId": "v-1", "values": {"plan": "free"}}])
    response = write(pendo, [{"visitorId": "v-1", "values": {"plan": "pro", "seats": "many"}}])
    assert (response.json()["updated"], response.json()["failed"]) == (0, 1)
    assert stored(sandbox)["v-1"]["custom"] == {"plan": "free"}


def test_error_strings_name_the_field_and_never_the_record(pendo: httpx.Client) -> None:
    records = [
        {"visitorId": "visitor-alpha-17", "values": {"seats": "42"}},
        {"visitorId": "visitor-beta-23", "values": {"colour": "red"}},
    ]
    errors = write(pendo, records).json()["errors"]
    assert errors[0] == "field 'seats' expects number, got string"
    assert "field 'colour' is not a custom field of visitor" in errors[1]
    assert "Data Mappings" in errors[1]
    for error in errors:
        assert "visitor-alpha-17" not in error and "visitor-beta-23" not in error


@pytest.mark.parametrize(
    "record",
    [
        "v-1",
        {"values": {"plan": "pro"}},
        {"visitorId": "", "values": {}},
        {"visitorId": 17, "values": {}},
        {"visitorId": "v-1"},
        {"visitorId": "v-1", "values": ["plan", "pro"]},
    ],
)
def test_malformed_records_fail_with_an_error(
    sandbox: SandboxServer, pendo: httpx.Client, record: Any
) -> None:
    body = write(pendo, [record]).json()
    assert (body["total"], body["updated"], body["failed"], body["missing"]) == (1, 0, 1, [])
    [error] = body["errors"]
    assert error
    assert stored(sandbox) == {}


@pytest.mark.parametrize(
    ("values", "ok"),
    [
        ({"plan": "pro"}, True),
        ({"plan": 3}, False),
        ({"seats": 3}, True),
        ({"seats": 2.5}, True),
        ({"seats": True}, False),
        ({"is_trial": True}, True),
        ({"is_trial": "true"}, False),
        ({"is_trial": 1}, False),
        ({"signup_date": 1_700_000_000_000}, True),
        ({"signup_date": "2024-05-01T12:30:00Z"}, True),
        ({"signup_date": "2024-05-01"}, True),
        ({"signup_date": "yesterday"}, False),
        ({"signup_date": 1.7e12}, False),
        ({"signup_date": False}, False),
    ],
)
def test_field_types_are_checked(pendo: httpx.Client, values: dict[str, Any], ok: bool) -> None:
    body = write(pendo, [{"visitorId": "v-1", "values": values}]).json()
    assert (body["updated"], body["failed"]) == ((1, 0) if ok else (0, 1))


def test_null_is_accepted_for_every_type_and_clears_the_value(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    write(pendo, [{"visitorId": "v-1", "values": {"plan": "pro", "seats": 4}}])
    nulls = {"plan": None, "seats": None, "is_trial": None, "signup_date": None}
    body = write(pendo, [{"visitorId": "v-1", "values": nulls}]).json()
    assert (body["updated"], body["failed"]) == (1, 0)
    assert stored(sandbox)["v-1"]["custom"] == nulls


def test_agent_group_accepts_agent_fields_only(sandbox: SandboxServer, pendo: httpx.Client) -> None:
    agent_path = "/api/v1/metadata/visitor/agent/value"
    ok = write(pendo, [{"visitorId": "v-1", "values": {"email": "a@example.com"}}], path=agent_path)
    custom_field = write(pendo, [{"visitorId": "v-1", "values": {"plan": "pro"}}], path=agent_path)
    agent_in_custom = write(pendo, [{"visitorId": "v-1", "values": {"email": "a@example.com"}}])
    assert ok.json()["updated"] == 1
    assert custom_field.json()["errors"] == ["field 'plan' is not an agent field of visitor"]
    assert "field 'email' is not a custom field of visitor" in agent_in_custom.json()["errors"][0]
    assert stored(sandbox)["v-1"] == {"custom": {}, "agent": {"email": "a@example.com"}}


def test_account_records_use_account_id(sandbox: SandboxServer, pendo: httpx.Client) -> None:
    path = "/api/v1/metadata/account/custom/value"
    body = write(pendo, [{"accountId": "a-1", "values": {"tier": "gold", "arr": 1200}}], path=path)
    wrong_id = write(pendo, [{"visitorId": "a-2", "values": {"tier": "gold"}}], path=path)
    assert body.json()["updated"] == 1
    assert wrong_id.json()["errors"] == ["record has no accountId"]
    assert stored(sandbox, "account") == {
        "a-1": {"custom": {"tier": "gold", "arr": 1200}, "agent": {}}
    }


def test_bulk_path_writes_custom_fields_and_creates(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    response = pendo.post(
        "/api/v1/metadata/account/bulk", json=[{"accountId": "a-9", "values": {"name": "Acme"}}]
    )
    assert response.json() == {"total": 1, "updated": 1, "failed": 0, "missing": [], "errors": []}
    assert stored(sandbox, "account")["a-9"]["custom"] == {"name": "Acme"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/metadata/user/custom/value",
        "/api/v1/metadata/visitor/secret/value",
        "/api/v1/metadata/schema/user",
    ],
)
def test_unknown_kind_or_group_is_404(pendo: httpx.Client, path: str) -> None:
    response = pendo.request("GET" if "schema" in path else "POST", path, json=[])
    assert response.status_code == 404
    assert response.json()["message"]


@pytest.mark.parametrize("body", [{"visitorId": "v-1", "values": {}}, "v-1", 42, None])
def test_body_that_is_not_an_array_is_400(
    sandbox: SandboxServer, pendo: httpx.Client, body: Any
) -> None:
    response = write(pendo, body)
    assert response.status_code == 400
    assert "array" in response.json()["message"]
    assert stored(sandbox) == {}


def test_invalid_json_is_400(pendo: httpx.Client) -> None:
    response = pendo.post(
        VISITOR_CUSTOM,
        content=b'[{"visitorId": "v-1",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["message"]


def test_nan_is_not_json_so_the_body_is_400_and_still_logged(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    # What json.dumps writes for a pandas gap: a real JSON parser refuses it.
    raw = '[{"visitorId": "v-1", "values": {"seats": NaN}}]'
    response = pendo.post(VISITOR_CUSTOM, content=raw.encode(), headers=JSON_HEADERS)
    assert response.status_code == 400
    assert "NaN" in response.json()["message"]
    state = sandbox.state()
    assert state["metadata"]["visitor"] == {}
    assert state["requests"][0]["body"] == raw


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'[{"visitorId": "v-1", "values": {"seats": 1e400}}]', "infinity"),
        (b'[{"visitorId": "v-1", "values": {"plan": "a\\ud800"}}]', "no low surrogate"),
        (b'[{"visitorId": "v-\\udfff", "values": {"plan": "a"}}]', "surrogate"),
        (b'[{"visitorId": "v-1", "values": {"plan": "a\xed\xa0\x80"}}]', "not valid UTF-8"),
    ],
    ids=["number beyond a double", "escaped half pair", "half pair in an id", "raw half pair"],
)
def test_a_body_no_real_parser_holds_is_400_and_the_state_stays_readable(
    sandbox: SandboxServer, pendo: httpx.Client, raw: bytes, reason: str
) -> None:
    """Stored, such a value made every later state answer fail (no JSON form for it)."""
    response = pendo.post(VISITOR_CUSTOM, content=raw, headers=JSON_HEADERS)

    assert response.status_code == 400
    assert reason in response.json()["message"]
    assert sandbox.state()["metadata"]["visitor"] == {}


def test_a_whole_surrogate_pair_is_text_and_is_stored(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    raw = b'[{"visitorId": "v-1", "values": {"plan": "\\ud83d\\ude00"}}]'
    response = pendo.post(
        VISITOR_CUSTOM, content=raw, headers=JSON_HEADERS, params={"create": "true"}
    )

    assert response.json()["updated"] == 1
    assert stored(sandbox)["v-1"]["custom"]["plan"] == "\U0001f600"


def test_more_records_than_max_batch_is_413_and_nothing_is_written(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    records = [{"visitorId": f"v-{i}", "values": {"seats": i}} for i in range(1001)]
    response = write(pendo, records)
    assert response.status_code == 413
    assert "1000" in response.json()["message"]
    assert stored(sandbox) == {}


def test_exactly_max_batch_records_is_accepted(sandbox: SandboxServer, pendo: httpx.Client) -> None:
    records = [{"visitorId": f"v-{i}", "values": {"seats": i}} for i in range(1000)]
    assert write(pendo, records).json()["updated"] == 1000
    assert len(stored(sandbox)) == 1000


def test_schema_lists_auto_agent_and_custom_fields_with_pendo_attributes(
    pendo: httpx.Client,
) -> None:
    schema = pendo.get("/api/v1/metadata/schema/visitor").json()
    assert set(schema) == {"auto", "agent", "custom"}
    assert "lastvisit" in schema["auto"]
    assert set(schema["agent"]) == {"email"}
    assert {name: attrs["Type"] for name, attrs in schema["custom"].items()} == {
        "plan": "string",
        "seats": "number",
        "is_trial": "boolean",
        "signup_date": "time",
    }
    assert schema["custom"]["seats"] == {
        "Type": "number",
        "DisplayName": "seats",
        "ElementType": "",
        "isDeleted": False,
        "isCalculated": False,
        "isPerApp": False,
    }


def test_account_schema_has_account_fields(pendo: httpx.Client) -> None:
    schema = pendo.get("/api/v1/metadata/schema/account").json()
    assert sorted(schema["custom"]) == ["arr", "name", "tier"]
    assert schema["agent"] == {}


def test_stored_values_are_exact_json(sandbox: SandboxServer, pendo: httpx.Client) -> None:
    values = {"plan": "pro ✓", "seats": 0, "signup_date": "2024-05-01T12:30:00+02:00"}
    write(pendo, [{"visitorId": "v-ü", "values": values}])
    assert json.dumps(stored(sandbox)["v-ü"]["custom"], sort_keys=True) == json.dumps(
        values, sort_keys=True
    )


def test_integers_within_64_bits_are_kept_exactly(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    # 2**63 - 1 has no exact double: kept as the integer sent.
    write(pendo, [{"visitorId": "v-1", "values": {"seats": 2**63 - 1}}])
    assert stored(sandbox)["v-1"]["custom"]["seats"] == 9223372036854775807


def test_integers_beyond_64_bits_become_the_nearest_double(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    write(pendo, [{"visitorId": "v-1", "values": {"seats": 2**70 + 1}}])
    assert stored(sandbox)["v-1"]["custom"]["seats"] == float(2**70)


def test_a_body_not_in_utf8_is_400_and_nothing_is_stored(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    raw = json.dumps([{"visitorId": "v-1", "values": {"plan": "pro"}}]).encode("utf-16")
    response = pendo.post(VISITOR_CUSTOM, content=raw, headers=JSON_HEADERS)
    assert response.status_code == 400
    assert "not valid UTF-8" in response.json()["message"]
    assert stored(sandbox) == {}


def test_an_id_created_in_one_group_is_known_to_the_other(
    sandbox: SandboxServer, pendo: httpx.Client
) -> None:
    write(
        pendo,
        [{"visitorId": "v-1", "values": {"email": "a@example.com"}}],
        path="/api/v1/metadata/visitor/agent/value",
    )
    response = write(pendo, [{"visitorId": "v-1", "values": {"plan": "pro"}}], create=False)
    assert response.json()["updated"] == 1
    assert stored(sandbox)["v-1"] == {
        "custom": {"plan": "pro"},
        "agent": {"email": "a@example.com"},
    }
