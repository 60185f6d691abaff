"""Prepare and decide, one chunk at a time: the verdict on every row before anything is sent.

A chunk is prepared (ids, values, validation), keyed, looked up in the sync state in bulk and
decided (send, skip, fail). What must carry from chunk to chunk lives in the `Planner`: the
event keys already seen in the partition, Pendo's schema once it has been read, and whether
the state still holds old content-hash event keys.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pendo_assets.client import (
    MetadataSchema,
    PendoAuthError,
    PendoClient,
    PendoRequestError,
    PendoUnavailableError,
)
from pendo_assets.sync.decide.change_detection import (
    Decision,
    Keyed,
    decide_events,
    decide_metadata,
    key_events,
    key_metadata,
    legacy_event_keys,
)
from pendo_assets.sync.prepare.field_types import MissingFieldsError, apply_schema
from pendo_assets.sync.prepare.metadata_rows import PreparedMetadata, prepare_metadata
from pendo_assets.sync.prepare.track_rows import PreparedEvents, prepare_events
from pendo_assets.sync.record.state_store import Changes, StateScope
from pendo_assets.sync.results import RowFailure
from pendo_assets.sync.spec import EVENT_ID_TARGET, SyncSpec


@dataclass
class Stop:
    """Why the sync stopped sending, set once by whichever stage found out first."""

    reason: str | None = None
    cause: BaseException | None = None
    before_sending: bool = False  # the preflight refused: nothing of this sync went out
    retryable: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(
        self,
        reason: str,
        cause: BaseException | None,
        *,
        retryable: bool,
        before_sending: bool = False,
    ) -> None:
        with self._lock:
            if self.reason is None:
                self.reason, self.cause = reason, cause
                self.retryable, self.before_sending = retryable, before_sending

    def __bool__(self) -> bool:
        return self.reason is not None


@dataclass
class Plan:
    """One chunk, prepared and decided. Positions are the chunk's own (0..rows-1)."""

    offset: int  # rows of the partition before this chunk
    prepared: PreparedMetadata | PreparedEvents
    keyed: Keyed
    decision: Decision
    previous_payloads: dict[str, str] = field(default_factory=dict)  # dry runs: for the preview

    @property
    def rows(self) -> int:
        return self.prepared.rows

    @property
    def ids(self) -> list[str | None]:
        """Each row's record id (for events: its visitor), for failure records."""
        if isinstance(self.prepared, PreparedMetadata):
            return self.prepared.ids
        return self.prepared.visitor_ids

    @property
    def failures(self) -> dict[int, RowFailure]:
        """Rows that fail before sending: validation, and (events) a reused event_id."""
        return self.prepared.failures

    @property
    def skipped(self) -> dict[int, str]:
        """Rows prepare set aside (metadata: superseded by a later row of the same id)."""
        return self.prepared.skipped if isinstance(self.prepared, PreparedMetadata) else {}


class Planner:
    """Plans the chunks of one partition in order; not shared between partitions."""

    def __init__(
        self,
        spec: SyncSpec,
        client: PendoClient,
        scope: StateScope | None,
        stop: Stop,
        *,
        full_refresh: bool,
        resend_events: bool,
        with_payloads: bool,
        preflight: bool,
        now_ms: int | None,
    ) -> None:
        self._spec = spec
        self._client = client
        self._scope = scope
        self._stop = stop
        self._full_refresh = full_refresh
        self._resend = full_refresh and resend_events
        self._with_payloads = with_payloads
        self._preflight = preflight
        self._now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        self._seen_events: set[str] = set()
        self._schema: MetadataSchema | None = None
        self._legacy_keys: bool | None = None
        self._nothing_recorded: bool | None = None  # when the first chunk was planned
        self.older_than_window = 0

    def plan(self, frame: pd.DataFrame, offset: int) -> Plan:
        frame = frame.reset_index(drop=True)
        if self._spec.is_metadata:
            return self._plan_metadata(frame, offset)
        return self._plan_events(frame, offset)

    def _plan_metadata(self, frame: pd.DataFrame, offset: int) -> Plan:
        prepared = prepare_metadata(self._spec, frame)
        # Keys and hashes are of the values as the warehouse has them, before coercion to
        # Pendo's types, so an unchanged partition needs no schema read: no request at all.
        keyed = key_metadata(prepared)
        scope = self._scope
        decision = (
            decide_metadata(
                keyed,
                self._changes(scope, keyed),
                mode=self._spec.mode,
                full_refresh=self._full_refresh,
            )
            if scope
            else Decision.send_all(prepared.sendable)
        )
        if self._preflight and len(decision.send) and not self._stop:
            decision.send = self._coerce(prepared, decision.send)
        previous: dict[str, str] = {}
        if scope and self._with_payloads and decision.changed:  # only changed records have one
            previous = scope.payloads(keyed.keys)
        return Plan(offset, prepared, keyed, decision, previous)

    def _coerce(self, prepared: PreparedMetadata, send: np.ndarray) -> np.ndarray:
        """Pendo's schema, read once per partition: missing fields or a refused key stop the
        sync before any row goes out; values are coerced to the declared types."""
        try:
            if self._schema is None:
                self._schema = self._client.read_schema(self._spec.metadata_kind)
            return apply_schema(self._spec, prepared, self._schema, send)
        except (MissingFieldsError, PendoAuthError, PendoUnavailableError, PendoRequestError) as e:
            retryable = isinstance(e, PendoUnavailableError | PendoRequestError)
            self._stop.set(str(e), e, retryable=retryable, before_sending=True)
            return send

    def _plan_events(self, frame: pd.DataFrame, offset: int) -> Plan:
        prepared = prepare_events(self._spec, frame, now_ms=self._now_ms)
        self.older_than_window += prepared.older_than_window
        scope = self._scope
        if scope is None:
            keyed = Keyed(prepared.sendable, [], [], b"")
            decision = Decision.send_all(prepared.sendable)
        else:
            keyed = key_events(prepared)
            decision = decide_events(
                keyed,
                self._event_changes(scope, keyed),
                resend=self._resend,
                by_event_id=prepared.event_ids is not None,
                seen=self._seen_events,
            )
        for position, reason in decision.failed.items():
            prepared.failures[position] = RowFailure(
                position, prepared.visitor_ids[position], reason, field=EVENT_ID_TARGET
            )
        return Plan(offset, prepared, keyed, decision)

    def _changes(self, scope: StateScope, keyed: Keyed) -> Changes:
        """New and changed keys of a chunk. A sync with nothing recorded when its partition's
        first chunk was planned (a first sync: the run holds the partition's lease, so no other
        run of it has written since) compares no chunk: its keys are all new, and a key does not
        come back in a later chunk (metadata chunks never split an id; events already seen in
        the partition are caught before this). Saves one lookup query per chunk of a first sync.
        """
        if self._nothing_recorded is None:
            self._nothing_recorded = scope.is_empty()
        if self._nothing_recorded:
            return Changes(list(range(len(keyed.keys))), [])
        return scope.changes(keyed.keys, keyed.hashes)

    def _event_changes(self, scope: StateScope, keyed: Keyed) -> Changes:
        """Events never delivered or delivered with other content, by identity key; an event
        that is new by identity but recorded under an older content-hash key was delivered with
        exactly this content, so it counts as delivered (state written before identity keys)."""
        changes = self._changes(scope, keyed)
        if self._nothing_recorded:
            return changes
        if self._legacy_keys is None:
            self._legacy_keys = scope.has_legacy_event_keys()
        if self._legacy_keys and changes.new:
            legacy = legacy_event_keys(keyed, changes.new)
            found = scope.known(legacy)
            still_new = [i for i, old in zip(changes.new, legacy, strict=True) if old not in found]
            changes = Changes(still_new, changes.changed)
        return changes
