"""Stable record keys and payload hashes: what change detection compares across runs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# One shared encoder: json.dumps with non-default arguments builds a new one on every call,
# which measured a third slower per row.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, so equal payloads hash equal."""
    return _ENCODER.encode(value)


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def payload_hash(payload: Any) -> str:
    """The hash of a payload as Pendo would receive it."""
    return digest(canonical_json(payload))


def event_key(body: dict[str, Any]) -> str:
    """A deterministic key for an event without an id column: who, what, when, with what."""
    parts = {
        "visitorId": body.get("visitorId"),
        "accountId": body.get("accountId"),
        "event": body.get("event"),
        "timestamp": body.get("timestamp"),
        "properties": body.get("properties"),
        "context": body.get("context"),
    }
    return "h:" + digest(canonical_json(parts))
