"""The sandbox's in-memory state. No HTTP and no Pendo rules here: just what was recorded.

The app runs on one event loop and never awaits in the middle of a store operation, so the
store needs no lock.
"""

from __future__ import annotations

import copy
import marshal
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pendo_assets.sandbox.rules import GROUPS, ID_KEYS

if TYPE_CHECKING:
    from pendo_assets.sandbox.redaction import LoggedRequest

PACING_SECONDS = 1.0


@dataclass
class Counters:
    """What happened, for tests and benchmarks to assert on."""

    requests: int = 0
    faults_injected: int = 0
    answers_lost: int = 0  # requests applied whose answer a fault then replaced
    pacing_429: int = 0
    properties_too_large: int = 0
    responses_by_status: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "faults_injected": self.faults_injected,
            "answers_lost": self.answers_lost,
            "pacing_429": self.pacing_429,
            "properties_too_large": self.properties_too_large,
            "responses_by_status": {
                str(status): count for status, count in sorted(self.responses_by_status.items())
            },
        }


class SandboxStore:
    """Metadata per kind and id, accepted track events, counters, the request log, pacing."""

    def __init__(self, request_log_limit: int) -> None:
        self._request_log_limit = request_log_limit
        self.reset()

    def reset(self) -> None:
        """Forget everything, as if the sandbox had just started."""
        # The ids of each kind in creation order (a dict of str -> None, which the cyclic GC never
        # tracks, unlike a list), and apart from them each group's values by id (see ``merge``).
        self._ids: dict[str, dict[str, None]] = {kind: {} for kind in ID_KEYS}
        self._values: dict[str, dict[str, dict[str, bytes]]] = {
            kind: {group: {} for group in GROUPS} for kind in ID_KEYS
        }
        self.events: list[dict[str, Any]] = []
        self.counters = Counters()
        self.request_log: deque[LoggedRequest] = deque(maxlen=self._request_log_limit)
        self._last_event_at: dict[str, float] = {}

    # metadata -----------------------------------------------------------------------------
    def exists(self, kind: str, record_id: str) -> bool:
        return record_id in self._ids[kind]

    def merge(
        self, kind: str, group: str, record_ids: list[str], values: list[dict[str, Any]]
    ) -> None:
        """Upsert each record's values into its id's group, creating the id if needed.

        Values are JSON scalars (the field types allow nothing else), each record's kept as
        its ``marshal`` bytes: exact for every JSON scalar, and not a container. A dict of
        bytes is never tracked by the cyclic GC; a dict of per-record dicts is, and each of
        the GC's full collections (dozens a million records) would walk every record held
        (measured: a sixth of the sandbox's CPU at a million visitors).
        """
        ids = self._ids[kind]
        stored = self._values[kind][group]
        for record_id, record_values in zip(record_ids, values, strict=True):
            ids[record_id] = None
            current = stored.get(record_id)
            if current is None:
                stored[record_id] = marshal.dumps(record_values)
            else:
                merged = marshal.loads(current)
                merged.update(record_values)
                stored[record_id] = marshal.dumps(merged)

    def metadata(self) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
        """A copy of the metadata: kind -> id -> group -> field -> value, ids in creation order."""
        return {kind: self._records(kind) for kind in ID_KEYS}

    def _records(self, kind: str) -> dict[str, dict[str, dict[str, Any]]]:
        """Each id's groups as field -> value, fields in the order they were first written."""
        groups = self._values[kind]
        return {
            record_id: {group: _load(groups[group].get(record_id)) for group in GROUPS}
            for record_id in self._ids[kind]
        }

    # track events -------------------------------------------------------------------------
    def paced(self, visitor_id: str, now: float) -> bool:
        """True when this visitor's previous accepted event is less than a second old."""
        last = self._last_event_at.get(visitor_id)
        return last is not None and now - last < PACING_SECONDS

    def add_event(self, event: dict[str, Any], visitor_id: str, now: float) -> dict[str, Any]:
        """Record an accepted event; ``sequence`` gives the arrival order (1-based)."""
        stored = {**event, "sequence": len(self.events) + 1}
        self.events.append(stored)
        self._last_event_at[visitor_id] = now
        return stored

    # bookkeeping --------------------------------------------------------------------------
    def log_request(self, request: LoggedRequest) -> None:
        self.request_log.append(request)

    def snapshot(
        self, include_requests: bool = True, include_timings: bool = False
    ) -> dict[str, Any]:
        """A JSON-ready deep copy of the state, so callers cannot mutate the store through it.

        Request-log entries carry ``received_at`` (monotonic seconds) only with ``include_timings``.
        """
        state: dict[str, Any] = {
            "metadata": self.metadata(),
            "events": copy.deepcopy(self.events),
            "counters": self.counters.as_dict(),
        }
        if include_requests:
            state["requests"] = [request.entry(include_timings) for request in self.request_log]
        return state


def _load(values: bytes | None) -> dict[str, Any]:
    return {} if values is None else marshal.loads(values)
