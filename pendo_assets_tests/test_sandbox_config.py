"""SandboxConfig: YAML loading, clear errors naming the bad key, credentials kept out of repr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pendo_assets.sandbox import SandboxConfig

DEMO_YAML = Path(__file__).resolve().parents[1] / "pendo_assets" / "sandbox" / "demo_sandbox.yaml"
VALID: dict[str, Any] = {"integration_key": "ik-123456789", "track_event_secret": "ts-987654321"}


def test_minimal_config_has_the_documented_defaults() -> None:
    config = SandboxConfig.from_dict(VALID)
    assert (config.latency_ms, config.fault_rate, config.retry_after_seconds) == (0, 0.0, 1)
    assert config.lost_answer_rate == 0.0
    assert (config.max_batch, config.seed, config.request_log_limit) == (1000, None, 10000)
    assert config.fields == {"visitor": {}, "account": {}}
    assert config.agent_fields == {"visitor": {}, "account": {}}


def test_yaml_file_is_read_with_fields_per_kind(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.yaml"
    path.write_text(
        "integration_key: ik-123456789\n"
        "track_event_secret: ts-987654321\n"
        "fields:\n  visitor: {plan: string, seats: number}\n  account: {name: string}\n"
        "agent_fields:\n  visitor: {email: string}\n"
        "fault_rate: 0.25\nseed: 3\n",
        encoding="utf-8",
    )
    config = SandboxConfig.from_yaml(path)
    assert config.fields == {
        "visitor": {"plan": "string", "seats": "number"},
        "account": {"name": "string"},
    }
    assert config.declared("visitor", "agent") == {"email": "string"}
    assert (config.fault_rate, config.seed) == (0.25, 3)


def test_demo_config_declares_the_demo_fields() -> None:
    config = SandboxConfig.from_yaml(DEMO_YAML)
    assert config.integration_key == "demo-integration-key"
    assert config.track_event_secret == "demo-track-secret"
    assert config.fields == {
        "visitor": {
            "accountId": "string",
            "plan": "string",
            "seats": "number",
            "is_trial": "boolean",
            "signup_date": "time",
        },
        "account": {"name": "string", "tier": "string", "arr": "number"},
    }
    assert config.agent_fields["visitor"] == {"email": "string"}


def test_repr_hides_both_credentials() -> None:
    config = SandboxConfig.from_dict(VALID)
    text = repr(config) + str(config)
    assert "ik-123456789" not in text
    assert "ts-987654321" not in text
    assert "max_batch=1000" in text  # the rest is still shown


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"fields": {"visitor": {"plan": "text"}}}, ["fields.visitor.plan", "text"]),
        ({"agent_fields": {"visitor": {"email": "varchar"}}}, ["agent_fields.visitor.email"]),
        ({"fields": {"user": {"plan": "string"}}}, ["fields.user", "visitor"]),
        ({"fields": {"visitor": {"my-plan": "string"}}}, ["fields.visitor.my-plan"]),
        ({"fields": ["plan"]}, ["fields"]),
        ({"fault_rate": -0.1}, ["fault_rate", ">= 0"]),
        ({"fault_rate": 1.5}, ["fault_rate", "<= 1"]),
        ({"lost_answer_rate": -0.5}, ["lost_answer_rate", ">= 0"]),
        ({"lost_answer_rate": 2}, ["lost_answer_rate", "<= 1"]),
        ({"latency_ms": -5}, ["latency_ms"]),
        ({"latency_ms": "fast"}, ["latency_ms"]),
        ({"retry_after_seconds": -1}, ["retry_after_seconds"]),
        ({"max_batch": 0}, ["max_batch"]),
        ({"max_batch": True}, ["max_batch"]),
        ({"seed": "abc"}, ["seed"]),
        ({"request_log_limit": -1}, ["request_log_limit"]),
        ({"fault_rat": 0.1}, ["fault_rat"]),
        ({"integration_key": ""}, ["integration_key"]),
    ],
)
def test_invalid_config_names_the_bad_key(changes: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        SandboxConfig.from_dict({**VALID, **changes})
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize("missing", ["integration_key", "track_event_secret"])
def test_missing_credential_is_named(missing: str) -> None:
    data = {key: value for key, value in VALID.items() if key != missing}
    with pytest.raises(ValueError, match=missing):
        SandboxConfig.from_dict(data)


def test_identical_credentials_are_refused() -> None:
    with pytest.raises(ValueError, match="must differ"):
        SandboxConfig.from_dict({"integration_key": "same", "track_event_secret": "same"})


def test_credential_errors_do_not_echo_the_value() -> None:
    with pytest.raises(ValueError) as info:
        SandboxConfig.from_dict({**VALID, "track_event_secret": 12345678})
    assert "12345678" not in str(info.value)


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("integration_key: a\ntrack_event_secret: b\nmax_batch: -3\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        SandboxConfig.from_yaml(path)
    assert "broken.yaml" in str(info.value)
    assert "max_batch" in str(info.value)


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- integration_key\n", encoding="utf-8")
    with pytest.raises(ValueError, match="mapping"):
        SandboxConfig.from_yaml(path)
