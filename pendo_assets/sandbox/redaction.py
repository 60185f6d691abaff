"""Request-log entries that never contain the sandbox's credentials.

The log is served over HTTP (``/sandbox/state``) and ends up in test output and bug reports,
so the credential header is replaced by the name of what it matched, and any other place a
credential was pasted into (query, body, path) is masked too.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

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
