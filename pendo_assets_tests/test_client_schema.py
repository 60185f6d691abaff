"""Reading Pendo's metadata schema."""

from __future__ import annotations

from typing import Any

import pytest

from pendo_assets.client import FieldSchema, PendoClient, PendoRequestError
from pendo_assets.client.schema import parse_schema


def test_schema_lists_custom_and_agent_fields_with_types(sandbox: Any, client: PendoClient) -> None:
    schema = client.read_schema("visitor")
    assert schema.custom == {
        "plan": FieldSchema("plan", "string", "custom", "plan"),
        "seats": FieldSchema("seats", "number", "custom", "seats"),
        "is_trial": FieldSchema("is_trial", "boolean", "custom", "is_trial"),
        "signup_date": FieldSchema("signup_date", "time", "custom", "signup_date"),
    }
    assert schema.agent == {"email": FieldSchema("email", "string", "agent", "email")}
    [request] = sandbox.state()["requests"]
    assert (request["method"], request["path"]) == ("GET", "/api/v1/metadata/schema/visitor")
    assert request["headers"]["x-pendo-integration-key"] == "<integration_key>"


def test_account_schema(sandbox: Any, client: PendoClient) -> None:
    schema = client.read_schema("account")
    assert sorted(schema.custom) == ["arr", "name", "tier"]
    assert schema.agent == {}


def test_deleted_fields_are_left_out() -> None:
    schema = parse_schema(
        "visitor",
        {"custom": {"old": {"Type": "string", "isDeleted": True}, "new": {"Type": "number"}}},
    )
    assert list(schema.custom) == ["new"]


def test_schema_error_status_raises_with_the_status(sandbox: Any, client: PendoClient) -> None:
    sandbox.script_faults([{"status": 404, "body": {"message": "no such kind"}}])
    with pytest.raises(PendoRequestError, match="HTTP 404 no such kind"):
        client.read_schema("visitor")
