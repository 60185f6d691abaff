"""Sync specs several engine tests share: a visitor plan and a track event, as the warehouse
tables of those tests hold them."""

from __future__ import annotations

from pendo_assets.sync.spec import SourceSpec, SyncSpec

VISITORS = SyncSpec(
    name="visitors",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={"id": "visitorId", "plan": "plan"},
)
EVENTS = SyncSpec(
    name="events",
    object_type="track_events",
    source=SourceSpec(partition_column="at", table="events"),
    mapping={"visitor": "visitorId", "name": "event", "at": "timestamp"},
)
