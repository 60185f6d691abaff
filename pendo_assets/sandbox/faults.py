"""Injected failures: scripted ones (deterministic, for tests) and random ones (fault_rate).

A fault normally replaces the whole handling of a request, so it has no effect on the state.
A lost answer (``after_effect``) is the other case, the one that makes a retry dangerous: the
request is handled and applied first (the event stored, the metadata written), and only then
is its answer replaced by the fault, a dropped connection or an error status.

Scripted entries (``POST /sandbox/faults`` with ``{"responses": [...]}``, or
``SandboxServer.script_faults``) answer the next Pendo API requests, in order. Keys:

- ``status``: the HTTP status to answer (200-599), required unless ``drop`` is true;
- ``retry_after``: a Retry-After header, sent verbatim (string or integer);
- ``body``: the JSON body (default ``{"message": "injected fault"}``);
- ``path``: only requests whose path starts with this use the entry (others skip it);
- ``drop``: send the headers, then close the connection mid-response;
- ``after_effect``: apply the request first, then answer with the fault (lost answer).

Random faults: ``fault_rate`` answers 429/5xx before any effect; ``lost_answer_rate`` applies
the request and then drops the connection or answers 502/504.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

DEFAULT_BODY: dict[str, str] = {"message": "injected fault"}
RANDOM_5XX: tuple[int, ...] = (500, 502, 503)
LOST_ANSWER_5XX: tuple[int, ...] = (502, 504)  # a gateway gave up after Pendo acted
_ENTRY_KEYS = frozenset({"status", "retry_after", "body", "path", "drop", "after_effect"})


class ConnectionDropped(Exception):
    """Raised after the response headers went out, so the server closes the connection."""


class DroppedResponse(Response):
    """Announces a body that never comes: the client sees the connection closed mid-response."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")],
            }
        )
        raise ConnectionDropped("sandbox dropped the connection on purpose")


@dataclass(frozen=True)
class Fault:
    """One injected answer: a status (optional Retry-After and body) or a dropped connection.

    With ``after_effect`` the request is applied before this answer replaces Pendo's.
    """

    status: int = 503
    retry_after: str | None = None
    body: Any = None
    has_body: bool = False
    path: str | None = None
    drop: bool = False
    after_effect: bool = False

    def applies_to(self, path: str) -> bool:
        return self.path is None or path.startswith(self.path)

    def response(self) -> Response:
        if self.drop:
            return DroppedResponse()
        headers = {"Retry-After": self.retry_after} if self.retry_after is not None else None
        if self.status in (204, 304):
            return Response(status_code=self.status, headers=headers)  # HTTP forbids a body
        body = self.body if self.has_body else DEFAULT_BODY
        return JSONResponse(body, status_code=self.status, headers=headers)


def parse_scripted(payload: Any) -> list[Fault]:
    """Parse the body of ``POST /sandbox/faults``; ValueError names the bad entry and key."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("responses"), list):
        raise ValueError('body must be an object like {"responses": [{"status": 503}, ...]}')
    return [_parse_entry(index, entry) for index, entry in enumerate(payload["responses"])]


def _parse_entry(index: int, entry: Any) -> Fault:
    where = f"responses[{index}]"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} must be an object")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    path = entry.get("path")
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        raise ValueError(f"{where}.path must be a string starting with '/'")
    drop = entry.get("drop", False)
    if not isinstance(drop, bool):
        raise ValueError(f"{where}.drop must be true or false")
    after_effect = entry.get("after_effect", False)
    if not isinstance(after_effect, bool):
        raise ValueError(f"{where}.after_effect must be true or false")
    if drop:
        return Fault(drop=True, path=path, after_effect=after_effect)
    status = entry.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise ValueError(
            f"{where}.status must be an HTTP status from 200 to 599 (or use drop: true)"
        )
    retry_after = entry.get("retry_after")
    if isinstance(retry_after, int) and not isinstance(retry_after, bool):
        retry_after = str(retry_after)
    if retry_after is not None and not isinstance(retry_after, str):
        raise ValueError(f"{where}.retry_after must be a string (sent verbatim) or an integer")
    return Fault(
        status=status,
        retry_after=retry_after,
        body=entry.get("body"),
        has_body="body" in entry,
        path=path,
        after_effect=after_effect,
    )


class FaultInjector:
    """The scripted queue plus the seeded random faults."""

    def __init__(
        self,
        fault_rate: float,
        retry_after_seconds: int,
        seed: int | None,
        lost_answer_rate: float = 0.0,
    ) -> None:
        self._fault_rate = fault_rate
        self._lost_answer_rate = lost_answer_rate
        self._retry_after = str(retry_after_seconds)
        self._seed = seed
        self.reset()

    def reset(self) -> None:
        """Empty the queue and re-seed, so a reset sandbox replays the same random faults."""
        self.clear_queue()
        self._rng = random.Random(self._seed)

    def clear_queue(self) -> None:
        self._queue: list[Fault] = []

    def script(self, faults: list[Fault]) -> int:
        """Queue faults; returns how many are pending."""
        self._queue.extend(faults)
        return len(self._queue)

    def next_fault(self, path: str) -> Fault | None:
        """The fault that answers a Pendo API request to ``path``, if any.

        The first queued entry that applies to ``path`` wins (entries for other paths stay
        queued); otherwise a random fault with probability ``fault_rate``, else a random lost
        answer with probability ``lost_answer_rate``.
        """
        for index, fault in enumerate(self._queue):
            if fault.applies_to(path):
                return self._queue.pop(index)
        if self._fault_rate > 0 and self._rng.random() < self._fault_rate:
            if self._rng.random() < 0.5:
                retry_after = self._retry_after if self._rng.random() < 0.5 else None
                return Fault(
                    status=429,
                    retry_after=retry_after,
                    body={"message": "rate limit exceeded (injected fault)"},
                    has_body=True,
                )
            return Fault(status=self._rng.choice(RANDOM_5XX))
        # Drawn only when enabled, so configs without it replay the same faults as before.
        if self._lost_answer_rate > 0 and self._rng.random() < self._lost_answer_rate:
            if self._rng.random() < 0.5:
                return Fault(drop=True, after_effect=True)
            return Fault(status=self._rng.choice(LOST_ANSWER_5XX), after_effect=True)
        return None


class _HideDroppedConnections(logging.Filter):
    """Keeps uvicorn from logging a traceback for every connection dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BaseExceptionGroup):
            return not all(isinstance(e, ConnectionDropped) for e in exc.exceptions)
        return not isinstance(exc, ConnectionDropped)


def hide_dropped_connection_tracebacks() -> None:
    """Install the filter on uvicorn's error logger once (call after uvicorn configured logging)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDroppedConnections) for f in logger.filters):
        logger.addFilter(_HideDroppedConnections())
