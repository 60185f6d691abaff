"""Accepting one track event: pacing, the 512-byte limit and hidden property names. No HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pendo_assets.sandbox.rules import MAX_PROPERTIES_BYTES, properties_size, split_properties
from pendo_assets.sandbox.store import SandboxStore


@dataclass(frozen=True)
class TrackOutcome:
    """Either the stored event, or ``paced`` when the visitor sent another event too soon."""

    stored: dict[str, Any] | None
    paced: bool = False


def accept_event(store: SandboxStore, event: dict[str, Any], now: float) -> TrackOutcome:
    """Store a valid event (checked by ``rules.track_event_error``) unless pacing refuses it.

    Oversized properties are dropped as a whole and flagged, as Pendo marks them "too large";
    otherwise badly named properties are removed and listed in ``hidden_properties``.
    """
    visitor_id: str = event["visitorId"]
    if store.paced(visitor_id, now):
        store.counters.pacing_429 += 1
        return TrackOutcome(stored=None, paced=True)
    properties: dict[str, Any] = event.get("properties") or {}
    too_large = properties_size(properties) > MAX_PROPERTIES_BYTES
    if too_large:
        store.counters.properties_too_large += 1
        kept: dict[str, Any] = {}
        hidden: list[str] = []
    else:
        kept, hidden = split_properties(properties)
    stored = {
        **event,
        "properties": kept,
        "hidden_properties": hidden,
        "properties_too_large": too_large,
    }
    return TrackOutcome(stored=store.add_event(stored, visitor_id, now))
