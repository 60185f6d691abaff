"""What a user declares: the syncs file and the typed specs it becomes.

Everything that can be wrong with a sync is found here, at load time, with the file, the sync
and the reason in the message, so a bad declaration never reaches a run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from pendo_assets.sync.prepare.field_names import name_problem

VISITOR_METADATA = "visitor_metadata"
ACCOUNT_METADATA = "account_metadata"
TRACK_EVENTS = "track_events"
OBJECT_TYPES: tuple[str, ...] = (VISITOR_METADATA, ACCOUNT_METADATA, TRACK_EVENTS)
MODES: tuple[str, ...] = ("upsert", "insert", "update")
# Track sends whose answer was lost: send again (at least once) or leave them (at most once).
IN_DOUBT_POLICIES: tuple[str, ...] = ("resend", "skip")
DEFAULT_SENSOR_LOOKBACK_DAYS = 2.0
#: What a syncs file may declare as `source.partition_kind`, to skip the probe that finds it.
DECLARABLE_KINDS: tuple[str, ...] = ("timestamptz", "timestamp", "date", "iso_text", "epoch")
EVENT_ID_TARGET = "event_id"  # track events: the column that identifies an event; not sent

REQUIRED_TARGETS: dict[str, tuple[str, ...]] = {
    VISITOR_METADATA: ("visitorId",),
    ACCOUNT_METADATA: ("accountId",),
    TRACK_EVENTS: ("visitorId", "event", "timestamp"),
}
TRACK_PLACES: dict[str, tuple[str, ...]] = {
    # target -> where it goes in the track event body
    "visitorId": ("visitorId",),
    "accountId": ("accountId",),
    "event": ("event",),
    "timestamp": ("timestamp",),
    "properties": ("properties",),
    "context_ip": ("context", "ip"),
    "context_user_agent": ("context", "userAgent"),
    "context_url": ("context", "url"),
    "context_title": ("context", "title"),
}
AGENT_PREFIX = "agent."
_SYNC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_READ_ONLY_QUERY = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


class SyncConfigError(ValueError):
    """A syncs file or sync spec that cannot work; the message names where and why."""


@dataclass(frozen=True)
class SourceSpec:
    """Where a sync's rows come from: a table or a SELECT, cut into days by one column."""

    partition_column: str
    table: str | None = None
    query: str | None = None
    #: The IANA zone of naive timestamps and offset-less ISO text in the partition column.
    timezone: str = "UTC"
    #: What the partition column holds (see DECLARABLE_KINDS); None: found by a probe.
    partition_kind: str | None = None

    @property
    def schema_and_table(self) -> tuple[str | None, str]:
        assert self.table is not None
        schema, _, name = self.table.rpartition(".")
        return (schema or None), name


@dataclass(frozen=True)
class SyncSpec:
    """One declared sync: a source, an object type, a mode and a column-to-Pendo mapping."""

    name: str
    object_type: str
    source: SourceSpec
    mapping: Mapping[str, str]
    mode: str = "upsert"
    max_failure_rate: float = 0.01
    retry_max_attempts: int = 3
    retry_base_delay_minutes: float = 30.0
    in_doubt: str = "resend"
    sensor_lookback_days: float = DEFAULT_SENSOR_LOOKBACK_DAYS
    # Rows shown in `warehouse/<name>`'s metadata. 0 (the default): customer data stays out of
    # Dagster's event log.
    preview_rows: int = 0
    # Metadata only: keep each accepted payload in the sync state, for the old values of a dry
    # run's preview. False (the default): the state holds hashes, not customer data, and writes
    # about a third less.
    keep_payloads: bool = False
    description: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        problems = spec_problems(self)
        if problems:
            raise SyncConfigError(f"sync {self.name!r}: " + "; ".join(problems))

    @property
    def is_metadata(self) -> bool:
        return self.object_type != TRACK_EVENTS

    @property
    def metadata_kind(self) -> str:
        return {VISITOR_METADATA: "visitor", ACCOUNT_METADATA: "account"}[self.object_type]

    def column_for(self, target: str) -> str | None:
        """The warehouse column mapped to a Pendo target, if any."""
        for column, mapped in self.mapping.items():
            if mapped == target:
                return column
        return None

    @property
    def id_target(self) -> str:
        return "accountId" if self.object_type == ACCOUNT_METADATA else "visitorId"

    @property
    def id_column(self) -> str:
        column = self.column_for(self.id_target)
        assert column is not None  # guaranteed by validation
        return column

    @property
    def mapped(self) -> list[str]:
        """The warehouse columns a push sends from: the partition column only when mapped
        (the read is ordered and cut by it in SQL; loading its values is not free)."""
        return list(self.mapping)

    @property
    def columns(self) -> list[str]:
        """Every warehouse column the sync reads: the mapped ones and the partition column."""
        cols = list(self.mapping)
        if self.source.partition_column not in cols:
            cols.append(self.source.partition_column)
        return cols


@dataclass(frozen=True)
class SyncsFile:
    start_date: date
    syncs: tuple[SyncSpec, ...]
    origin: str = "<syncs>"

    def by_name(self, name: str) -> SyncSpec:
        for sync in self.syncs:
            if sync.name == name:
                return sync
        raise KeyError(name)


def spec_problems(spec: SyncSpec) -> list[str]:
    """Every reason this sync cannot run, in the order a user would fix them."""
    problems: list[str] = []
    if not isinstance(spec.name, str) or not _SYNC_NAME.fullmatch(spec.name):
        problems.append("name must be letters, digits and underscores, not starting with a digit")
    if spec.object_type not in OBJECT_TYPES:
        problems.append(
            f"unknown object_type {spec.object_type!r}; expected one of {', '.join(OBJECT_TYPES)}"
        )
        return problems
    if spec.mode not in MODES:
        problems.append(f"unknown mode {spec.mode!r}; expected one of {', '.join(MODES)}")
    if spec.object_type == TRACK_EVENTS and spec.mode == "update":
        problems.append("track events are append-only: mode 'update' does not apply to them")
    problems += _source_problems(spec.source)
    problems += _mapping_problems(spec)
    attempts = spec.retry_max_attempts
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        problems.append(f"retry.max_attempts must be a whole number >= 0, got {attempts!r}")
    delay = spec.retry_base_delay_minutes
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
        problems.append(f"retry.base_delay_minutes must be a number >= 0, got {delay!r}")
    if spec.in_doubt not in IN_DOUBT_POLICIES:
        problems.append(
            f"unknown in_doubt {spec.in_doubt!r}; expected one of {', '.join(IN_DOUBT_POLICIES)}"
        )
    lookback = spec.sensor_lookback_days
    if isinstance(lookback, bool) or not isinstance(lookback, int | float) or not lookback >= 1:
        problems.append(f"sensor_lookback_days must be a number >= 1, got {lookback!r}")
    preview = spec.preview_rows
    if isinstance(preview, bool) or not isinstance(preview, int) or not 0 <= preview <= 100:
        problems.append(f"preview_rows must be a whole number from 0 to 100, got {preview!r}")
    if not isinstance(spec.keep_payloads, bool):
        problems.append(f"keep_payloads must be true or false, got {spec.keep_payloads!r}")
    elif spec.keep_payloads and spec.object_type == TRACK_EVENTS:
        problems.append("keep_payloads applies to metadata syncs (events keep no payload)")
    rate = spec.max_failure_rate
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        problems.append(f"max_failure_rate must be a number from 0 to 1, got {rate!r}")
    return problems


def _source_problems(source: SourceSpec) -> list[str]:
    problems = []
    if bool(source.table) == bool(source.query):
        problems.append("source needs exactly one of `table` or `query`")
    if source.query and not _READ_ONLY_QUERY.match(source.query):
        problems.append(
            "source query must be a SELECT (or WITH ... SELECT): the warehouse is read-only"
        )
    if not source.partition_column or not isinstance(source.partition_column, str):
        problems.append("source needs a `partition_column`")
    if source.partition_kind is not None and source.partition_kind not in DECLARABLE_KINDS:
        problems.append(
            f"source partition_kind {source.partition_kind!r} is not one of "
            f"{', '.join(DECLARABLE_KINDS)}"
        )
    if not _known_zone(source.timezone):
        problems.append(
            f"source timezone {source.timezone!r} is not an IANA time zone "
            "(e.g. 'UTC', 'Europe/Berlin')"
        )
    return problems


def _known_zone(name: object) -> bool:
    """Whether ``name`` is a zone ``zoneinfo`` can load (checked at load, not at read time)."""
    if not isinstance(name, str) or not name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _mapping_problems(spec: SyncSpec) -> list[str]:
    problems: list[str] = []
    if not isinstance(spec.mapping, Mapping) or not spec.mapping:
        return ["mapping must map warehouse columns to Pendo fields"]
    targets = list(spec.mapping.values())
    for target in REQUIRED_TARGETS[spec.object_type]:
        if target not in targets:
            problems.append(f"required field {target!r} is not mapped")
    id_target = REQUIRED_TARGETS[spec.object_type][0]
    if spec.object_type != TRACK_EVENTS and all(t == id_target for t in targets):
        # With nothing to write no request is sent, and no row could ever be accounted for.
        problems.append(f"mapping has no Pendo field to write besides {id_target!r}")
    seen: set[str] = set()
    for column, target in spec.mapping.items():
        if not isinstance(target, str):
            problems.append(f"column {column!r} maps to {target!r}, which is not a field name")
            continue
        if target in seen:
            problems.append(f"field {target!r} is mapped from more than one column")
        seen.add(target)
        problem = _target_problem(spec.object_type, target)
        if problem:
            problems.append(f"column {column!r}: {problem}")
    return problems


def _target_problem(object_type: str, target: str) -> str | None:
    if object_type == TRACK_EVENTS:
        if target in TRACK_PLACES or target == EVENT_ID_TARGET:
            return None
        if target.startswith(AGENT_PREFIX):
            return "agent fields apply to metadata, not to track events"
        problem = name_problem(target)
        return f"event property {problem}; Pendo would hide it" if problem else None
    id_target = REQUIRED_TARGETS[object_type][0]
    if target == id_target:
        return None
    name = target.removeprefix(AGENT_PREFIX)
    problem = name_problem(name)
    return f"Pendo field {problem}" if problem else None


# -- loading -----------------------------------------------------------------------------------


def load_syncs_file(path: str | Path) -> SyncsFile:
    """Read and check a syncs YAML file; every error names the file."""
    origin = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SyncConfigError(f"{origin}: cannot read the syncs file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SyncConfigError(f"{origin}: not valid YAML: {exc}") from exc
    return parse_syncs(data, origin=origin)


def parse_syncs(data: Any, *, origin: str = "<syncs>") -> SyncsFile:
    if not isinstance(data, dict):
        raise SyncConfigError(f"{origin}: expected a mapping with `start_date` and `syncs`")
    unknown = set(data) - {"start_date", "syncs"}
    if unknown:
        raise SyncConfigError(f"{origin}: unknown top-level keys {sorted(unknown)}")
    start = _parse_date(data.get("start_date"), origin)
    raw_syncs = data.get("syncs")
    if not isinstance(raw_syncs, list) or not raw_syncs:
        raise SyncConfigError(f"{origin}: `syncs` must be a non-empty list")
    syncs: list[SyncSpec] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_syncs):
        sync = _parse_sync(raw, index, origin)
        if sync.name in names:
            raise SyncConfigError(f"{origin}: sync {sync.name!r}: duplicate sync name")
        names.add(sync.name)
        syncs.append(sync)
    return SyncsFile(start_date=start, syncs=tuple(syncs), origin=origin)


def _parse_date(value: Any, origin: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise SyncConfigError(
            f"{origin}: start_date must be a date like 2026-11-01, got {value!r}"
        ) from exc


_SYNC_KEYS = {
    "name",
    "object_type",
    "mode",
    "source",
    "mapping",
    "max_failure_rate",
    "retry",
    "in_doubt",
    "sensor_lookback_days",
    "preview_rows",
    "keep_payloads",
    "description",
}
_RETRY_KEYS = {"max_attempts", "base_delay_minutes"}
_SOURCE_KEYS = {"table", "query", "partition_column", "timezone", "partition_kind"}


def _parse_sync(raw: Any, index: int, origin: str) -> SyncSpec:
    label = f"sync #{index + 1}"
    if isinstance(raw, dict) and isinstance(raw.get("name"), str):
        label = f"sync {raw['name']!r}"
    where = f"{origin}: {label}"
    if not isinstance(raw, dict):
        raise SyncConfigError(f"{where}: expected a mapping")
    unknown = set(raw) - _SYNC_KEYS
    if unknown:
        raise SyncConfigError(f"{where}: unknown keys {sorted(unknown)}")
    source = raw.get("source")
    if not isinstance(source, dict):
        raise SyncConfigError(f"{where}: `source` must be a mapping with `table` or `query`")
    unknown = set(source) - _SOURCE_KEYS
    if unknown:
        raise SyncConfigError(f"{where}: unknown source keys {sorted(unknown)}")
    retry = raw.get("retry") or {}
    if not isinstance(retry, dict) or set(retry) - _RETRY_KEYS:
        raise SyncConfigError(f"{where}: `retry` takes {sorted(_RETRY_KEYS)}, got {retry!r}")
    mapping = raw.get("mapping")
    if not isinstance(mapping, dict):
        raise SyncConfigError(f"{where}: `mapping` must map warehouse columns to Pendo fields")
    try:
        return SyncSpec(
            name=raw.get("name"),  # type: ignore[arg-type]
            object_type=raw.get("object_type"),  # type: ignore[arg-type]
            mode=raw.get("mode", "upsert"),
            source=SourceSpec(
                partition_column=source.get("partition_column"),  # type: ignore[arg-type]
                table=source.get("table"),
                query=source.get("query"),
                timezone=source.get("timezone", "UTC"),
                partition_kind=source.get("partition_kind"),
            ),
            mapping={str(k): v for k, v in mapping.items()},
            max_failure_rate=raw.get("max_failure_rate", 0.01),
            retry_max_attempts=retry.get("max_attempts", 3),
            retry_base_delay_minutes=retry.get("base_delay_minutes", 30.0),
            in_doubt=raw.get("in_doubt", "resend"),
            sensor_lookback_days=raw.get("sensor_lookback_days", DEFAULT_SENSOR_LOOKBACK_DAYS),
            preview_rows=raw.get("preview_rows", 0),
            keep_payloads=raw.get("keep_payloads", False),
            description=raw.get("description"),
        )
    except SyncConfigError as exc:
        # SyncSpec prefixes its own label; drop it whole (a name may itself hold ": ").
        message = str(exc).removeprefix(f"sync {raw.get('name')!r}: ")
        raise SyncConfigError(f"{where}: {message}") from None
