"""Configuration of the local Pendo sandbox: credentials, declared fields and fault knobs.

Validation happens here, once, so the server never runs with a config that would make it
behave in a way nobody asked for; every error names the offending key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

KINDS: tuple[str, ...] = ("visitor", "account")
FIELD_TYPES: tuple[str, ...] = ("string", "number", "boolean", "time")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

FieldMap = dict[str, dict[str, str]]


@dataclass(frozen=True)
class SandboxConfig:
    """What the sandbox accepts and how it misbehaves.

    The credentials are kept out of ``repr`` because users may paste real-looking keys.
    """

    integration_key: str = field(repr=False)
    track_event_secret: str = field(repr=False)
    fields: FieldMap = field(default_factory=dict)
    agent_fields: FieldMap = field(default_factory=dict)
    latency_ms: float = 0
    fault_rate: float = 0.0
    lost_answer_rate: float = 0.0
    retry_after_seconds: int = 1
    max_batch: int = 1000
    seed: int | None = None
    request_log_limit: int = 10000

    def __post_init__(self) -> None:
        _require_secret("integration_key", self.integration_key)
        _require_secret("track_event_secret", self.track_event_secret)
        if self.integration_key == self.track_event_secret:
            raise ValueError(
                "integration_key and track_event_secret must differ: Pendo uses two credentials"
            )
        # Normalised copies: every kind present, and no aliasing of the caller's dicts.
        object.__setattr__(self, "fields", _field_map("fields", self.fields))
        object.__setattr__(self, "agent_fields", _field_map("agent_fields", self.agent_fields))
        _require_number("latency_ms", self.latency_ms, minimum=0)
        _require_number("fault_rate", self.fault_rate, minimum=0, maximum=1)
        _require_number("lost_answer_rate", self.lost_answer_rate, minimum=0, maximum=1)
        _require_int("retry_after_seconds", self.retry_after_seconds, minimum=0)
        _require_int("max_batch", self.max_batch, minimum=1)
        if self.seed is not None:
            _require_int("seed", self.seed)
        _require_int("request_log_limit", self.request_log_limit, minimum=0)

    def declared(self, kind: str, group: str) -> dict[str, str]:
        """Field name -> type for ``kind`` in ``group`` (``custom`` or ``agent``)."""
        source = self.fields if group == "custom" else self.agent_fields
        return source.get(kind, {})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxConfig:
        """Build a config from a parsed YAML/JSON mapping; unknown keys are errors, not ignored."""
        if not isinstance(data, Mapping):
            raise ValueError(f"sandbox config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise ValueError(
                f"unknown sandbox config key(s): {', '.join(unknown)}; "
                f"expected some of: {', '.join(sorted(known))}"
            )
        for required in ("integration_key", "track_event_secret"):
            if required not in data:
                raise ValueError(f"sandbox config is missing required key '{required}'")
        values = dict(data)
        for key in ("fields", "agent_fields"):
            if values.get(key) is None:
                values.pop(key, None)
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SandboxConfig:
        """Read a YAML config file; errors name the file as well as the key."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from exc
        try:
            return cls.from_dict(data if data is not None else {})
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc


def _require_secret(key: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        # Never echo the value: it may be a real credential.
        raise ValueError(f"'{key}' must be a non-empty string")


def _require_number(
    key: str, value: object, *, minimum: float | None = None, maximum: float | None = None
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"'{key}' must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"'{key}' must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"'{key}' must be <= {maximum}, got {value!r}")


def _require_int(key: str, value: object, *, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"'{key}' must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"'{key}' must be >= {minimum}, got {value!r}")


def _field_map(key: str, value: object) -> FieldMap:
    if not isinstance(value, Mapping):
        raise ValueError(f"'{key}' must be a mapping of kind -> {{field: type}}")
    result: FieldMap = {kind: {} for kind in KINDS}
    for kind, declared in value.items():
        if kind not in KINDS:
            raise ValueError(f"'{key}.{kind}': unknown kind; expected one of {', '.join(KINDS)}")
        if declared is None:
            continue
        if not isinstance(declared, Mapping):
            raise ValueError(f"'{key}.{kind}' must be a mapping of field name -> type")
        for name, type_name in declared.items():
            if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
                raise ValueError(
                    f"'{key}.{kind}.{name}': field names are letters, digits and underscores, "
                    "starting with a letter or underscore"
                )
            if type_name not in FIELD_TYPES:
                raise ValueError(
                    f"'{key}.{kind}.{name}': unknown field type {type_name!r}; "
                    f"expected one of {', '.join(FIELD_TYPES)}"
                )
            result[kind][name] = type_name
    return result
