"""Request-log entries that never contain the sandbox's credentials.

The log is served over HTTP (``/sandbox/state``) and ends up in test output and bug reports,
so the credential header is replaced by the name of what it matched, and any other place a
credential was pasted into (query, body, path) is masked too.

Masking re-parses and walks the whole body, which costs more than handling the request, and
most requests fall off the end of the log unseen; so the log keeps a ``LoggedRequest`` (the
raw parts) and builds the masked entry only when the log is read.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers, QueryParams

from pendo_assets.sandbox.rules import parse_json

CREDENTIAL_HEADER = "x-pendo-integration-key"
LOGGED_HEADERS: tuple[str, ...] = ("content-type", "user-agent", CREDENTIAL_HEADER)
MIN_SUBSTRING_SECRET = 8


def credential_label(value: str, integration_key: str, track_event_secret: str) -> str:
    """Which credential a header value is, as a placeholder safe to show."""
    if hmac.compare_digest(value.encode(), integration_key.encode()):
        return "<integration_key>"
    if hmac.compare_digest(value.encode(), track_event_secret.encode()):
        return "<track_event_secret>"
    return "<invalid>"


@dataclass(slots=True, repr=False)
class LoggedRequest:
    """One request as received, unmasked: kept only inside the sandbox, never served as is
    (no field repr either: the headers, query, path and body may hold a credential).

    ``raw_headers`` is a copy of the ASGI header list; ``status`` is None when the connection
    was dropped; ``received_at`` is ``time.monotonic()`` at arrival. Never changed once made;
    not frozen only because one is made per request and a frozen one takes thrice as long.
    """

    method: str
    path: str
    query_string: bytes
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes
    status: int | None
    received_at: float
    integration_key: str
    track_event_secret: str

    def entry(self, include_timings: bool = False) -> dict[str, Any]:
        """The masked log entry, a new object each call; ``received_at`` only with timings."""
        entry = log_entry(
            method=self.method,
            path=self.path,
            query=QueryParams(self.query_string),
            headers=Headers(raw=self.raw_headers),
            body=self.body,
            status=self.status,
            integration_key=self.integration_key,
            track_event_secret=self.track_event_secret,
        )
        if include_timings:
            entry["received_at"] = self.received_at
        return entry


def log_entry(
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    status: int | None,
    integration_key: str,
    track_event_secret: str,
) -> dict[str, Any]:
    """One request-log entry; ``status`` is None when the connection was dropped."""
    secrets = {integration_key: "<integration_key>", track_event_secret: "<track_event_secret>"}
    logged_headers: dict[str, str] = {}
    for name in LOGGED_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if name == CREDENTIAL_HEADER:
            value = credential_label(value, integration_key, track_event_secret)
        logged_headers[name] = _scrub(value, secrets)
    return {
        "method": method,
        "path": _scrub(path, secrets),
        "query": _scrub(dict(query), secrets),
        "headers": logged_headers,
        "body": _scrub(_decode(body), secrets),
        "status": status,
    }


def _decode(body: bytes) -> Any:
    if not body:
        return None
    value, problem = parse_json(body)
    return body.decode("utf-8", errors="replace") if problem is not None else value


def _scrub(value: Any, secrets: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for secret, label in secrets.items():
            if value == secret:
                return label
            # Substrings only for secrets long enough not to mangle ordinary words.
            if len(secret) >= MIN_SUBSTRING_SECRET:
                value = value.replace(secret, label)
        return value
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    if isinstance(value, dict):
        return {_scrub(key, secrets): _scrub(item, secrets) for key, item in value.items()}
    return value
