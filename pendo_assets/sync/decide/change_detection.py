"""Which rows to send: compares each row's payload with what Pendo last accepted.

Metadata rows are keyed by their id and compared by payload hash. Events are keyed by their
`event_id` column or by their identity (visitor, account, event, timestamp); an event once
delivered is never sent again, even when its properties change later (Pendo events are
immutable), and an `event_id` that comes back with other content fails its row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pendo_assets.sync.decide.record_keys import (
    canonical_json,
    digests,
    event_key,
    legacy_event_key,
)
from pendo_assets.sync.prepare.metadata_rows import PreparedMetadata
from pendo_assets.sync.prepare.track_rows import PreparedEvents
from pendo_assets.sync.record.state_store import Changes

UNCHANGED = "unchanged since Pendo last accepted it"
NO_CHANGES = "No changes."  # the dry-run preview when nothing would change
ALREADY_SENT = "already in Pendo (insert mode sends only new records)"
ALREADY_DELIVERED = "event already delivered to Pendo"
DUPLICATE_EVENT = "duplicate of an earlier row with the same event key"
CHANGED_AFTER_DELIVERY = (
    "event already delivered to Pendo; its properties changed since, and Pendo events cannot "
    "be changed: not sent again"
)
EVENT_ID_REUSED = (
    "event_id reused: an event with this event_id was delivered before with other content "
    "(visitor, event, timestamp or properties); not sent"
)


@dataclass
class Keyed:
    """Per sendable row: its record key, payload JSON and hash (aligned with `positions`;
    the hashes as one run of 16 bytes each)."""

    positions: np.ndarray
    keys: list[str]
    payloads: list[str]
    hashes: bytes


def key_metadata(prepared: PreparedMetadata) -> Keyed:
    """Keys, canonical payloads `{"agent": {...}, "custom": {...}}` (`payloads()`: the text
    `canonical_json` gives, so hashes never change) and their hashes."""
    positions = prepared.sendable
    bodies = prepared.payloads()
    ids = prepared.ids
    # Sendable rows have valid ids (never None); a chunk sent whole keeps its ids as they are.
    whole = len(positions) == len(ids)
    keys = list(ids) if whole else list(map(ids.__getitem__, positions.tolist()))
    return Keyed(positions, keys, bodies, digests(bodies))  # type: ignore[arg-type]


def key_events(prepared: PreparedEvents) -> Keyed:
    positions = prepared.sendable
    bodies = [prepared.event(p).payload() for p in positions]
    payloads = [canonical_json(body) for body in bodies]
    if prepared.event_ids is not None:
        keys = [f"id:{prepared.event_ids[p]}" for p in positions]
    else:
        keys = [event_key(body) for body in bodies]
    return Keyed(positions, keys, payloads, digests(payloads))


def legacy_event_keys(keyed: Keyed, indexes: list[int]) -> list[str]:
    """The content-hash keys older versions recorded the events at `indexes` under."""
    return [legacy_event_key(json.loads(keyed.payloads[i])) for i in indexes]


@dataclass
class Decision:
    """What to do with each sendable row."""

    send: np.ndarray  # positions to send
    skipped: dict[int, str] = field(default_factory=dict)  # position -> why not
    new: set[int] = field(default_factory=set)  # positions never accepted before
    changed: set[int] = field(default_factory=set)  # positions whose payload changed
    failed: dict[int, str] = field(default_factory=dict)  # position -> why it cannot go out

    @classmethod
    def send_all(cls, sendable: np.ndarray) -> Decision:
        """Without sync state: every valid row goes out, and counts as new."""
        return cls(send=sendable, new=set(sendable.tolist()))


def decide_metadata(keyed: Keyed, changes: Changes, *, mode: str, full_refresh: bool) -> Decision:
    """Send new records, and changed ones unless `mode` is insert; skip the rest (all of them
    with `full_refresh`: send everything). Whole-chunk array operations: a re-sync decides a
    million unchanged rows without a Python step per row."""
    positions = keyed.positions
    new = positions[changes.new]
    changed = positions[changes.changed]
    if full_refresh:
        send = np.ones(len(positions), dtype=bool)
    else:
        send = np.zeros(len(positions), dtype=bool)
        send[changes.new] = True
        if mode != "insert":
            send[changes.changed] = True
    reason = ALREADY_SENT if mode == "insert" else UNCHANGED
    return Decision(
        send=positions[send],
        skipped=dict.fromkeys(positions[~send].tolist(), reason),
        new=set(new.tolist()),
        changed=set(changed.tolist()),
    )


def decide_events(
    keyed: Keyed,
    changes: Changes,
    *,
    resend: bool,
    by_event_id: bool = False,
    seen: set[str] | None = None,
) -> Decision:
    """Send events never delivered; skip delivered ones (and note those changed since).

    With `by_event_id`, a delivered id whose content differs is a reused id, which fails its
    row: silently skipping it would lose a different event. `seen` holds the keys of earlier
    chunks of the same partition (it is updated): a repeat there is a duplicate too.
    """
    send: list[int] = []
    decision = Decision(send=np.empty(0, dtype=np.int64))
    seen = set() if seen is None else seen
    new, changed = set(changes.new), set(changes.changed)
    for i, (position, key) in enumerate(zip(keyed.positions.tolist(), keyed.keys, strict=True)):
        if key in seen:
            decision.skipped[position] = DUPLICATE_EVENT
            continue
        seen.add(key)
        if i not in new and not resend:
            if i not in changed:
                decision.skipped[position] = ALREADY_DELIVERED
            elif by_event_id:
                decision.failed[position] = EVENT_ID_REUSED
            else:
                decision.skipped[position] = CHANGED_AFTER_DELIVERY
                decision.changed.add(position)
            continue
        decision.new.add(position)
        send.append(position)
    decision.send = np.asarray(send, dtype=np.int64)
    return decision


NOT_KEPT = "(not kept)"  # a changed record whose old payload the state does not hold


def changes_markdown(
    keyed: Keyed,
    decision: Decision,
    previous_payloads: dict[str, str],
    ids: list[str | None],
    limit: int = 20,
) -> str:
    """`id, field, old -> new` for the first changed or new records (`previous_payloads`: what
    Pendo last accepted, by record key, where the sync keeps payloads). A changed record whose
    old payload was not kept lists every field of the new one, its old value not kept."""
    index_of = {int(p): i for i, p in enumerate(keyed.positions)}
    lines = ["| id | field | old -> new |", "|---|---|---|"]
    for position in decision.send[:limit]:
        i = index_of[int(position)]
        new = _flatten(json.loads(keyed.payloads[i]))
        previous = previous_payloads.get(keyed.keys[i])
        not_kept = previous is None and int(position) in decision.changed
        old = _flatten(json.loads(previous)) if previous else {}
        for name in sorted(set(new) | set(old)):
            if not_kept:
                lines.append(
                    f"| {ids[int(position)]} | {name} | {NOT_KEPT} -> {json.dumps(new[name])} |"
                )
            elif new.get(name) != old.get(name):
                before = "(none)" if name not in old else json.dumps(old[name])
                after = "(none)" if name not in new else json.dumps(new[name])
                lines.append(f"| {ids[int(position)]} | {name} | {before} -> {after} |")
    return "\n".join(lines) if len(lines) > 2 else NO_CHANGES


def _flatten(body: dict[str, Any]) -> dict[str, Any]:
    """`{"custom": {"plan": 1}, "agent": {...}}` as `{"plan": 1, "agent.email": ...}`."""
    flat: dict[str, Any] = {}
    for group, values in body.items():
        if isinstance(values, dict) and group in ("custom", "agent"):
            for name, value in values.items():
                flat[name if group == "custom" else f"agent.{name}"] = value
        else:
            flat[group] = values
    return flat
