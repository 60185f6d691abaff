"""The scale demo's warehouse: the same visitors every day, in metadata and in events.

Every day each visitor has one metadata row (its `synced_day` names the day, so each day's
record is a different payload and is sent) and events spread evenly over the day, so every
event has its own timestamp and runs of different days send events of the same visitors at the
same time. Everything is derived from the arguments: the same call gives the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

SCHEMA = "warehouse"
EVENT_NAME = "report_viewed"
PLANS = ("starter", "team", "enterprise")

MetadataKey = tuple[str, str]  # (visitorId, synced_day)
EventKey = tuple[str, str, int]  # (visitorId, event, timestamp in epoch milliseconds)


@dataclass(frozen=True)
class Workload:
    """What the warehouse holds, as the records Pendo should receive exactly once."""

    days: tuple[str, ...]
    visitors: int
    metadata: frozenset[MetadataKey]
    events: frozenset[EventKey]


def visitor_id(number: int) -> str:
    return f"v{number:05d}"


def account_id(number: int) -> str:
    return f"a{number % 50:03d}"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def build_workload(days: list[date], visitors: int, events_per_day: int) -> Workload:
    """The records of `days`: `visitors` metadata rows and `events_per_day` events a day."""
    metadata: set[MetadataKey] = set()
    events: set[EventKey] = set()
    for day in days:
        for number in range(visitors):
            metadata.add((visitor_id(number), day.isoformat()))
        for at, number in _event_times(day, visitors, events_per_day):
            events.add((visitor_id(number), EVENT_NAME, int(at.timestamp() * 1000)))
    return Workload(
        days=tuple(d.isoformat() for d in days),
        visitors=visitors,
        metadata=frozenset(metadata),
        events=frozenset(events),
    )


def _event_times(day: date, visitors: int, count: int) -> list[tuple[datetime, int]]:
    """`count` events evenly over the day, visitors in turn: whole milliseconds, all distinct."""
    step_ms = 86_400_000 // count
    start = _day_start(day)
    return [(start + timedelta(milliseconds=i * step_ms), i % visitors) for i in range(count)]


def fill_warehouse(url: str, days: list[date], visitors: int, events_per_day: int) -> Workload:
    """Create schema `warehouse` with tables `visitors` and `events` at `url` and fill them."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    meta = sa.MetaData(schema=SCHEMA)
    visitors_table = sa.Table(
        "visitors",
        meta,
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("synced_day", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    events_table = sa.Table(
        "events",
        meta,
        sa.Column("visitor_id", sa.Text, nullable=False),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("event_name", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("day", sa.Text, nullable=False),
    )
    try:
        with engine.begin() as conn:
            conn.execute(sa.schema.CreateSchema(SCHEMA, if_not_exists=True))
            meta.create_all(conn)
            for offset, day in enumerate(days):
                conn.execute(
                    visitors_table.insert(),
                    [
                        {
                            "id": visitor_id(n),
                            "account_id": account_id(n),
                            "plan": PLANS[(n + offset) % len(PLANS)],
                            "synced_day": day.isoformat(),
                            # Spread over the day; one row per visitor and day.
                            "updated_at": _day_start(day) + timedelta(seconds=n % 86_000),
                        }
                        for n in range(visitors)
                    ],
                )
                conn.execute(
                    events_table.insert(),
                    [
                        {
                            "visitor_id": visitor_id(n),
                            "account_id": account_id(n),
                            "event_name": EVENT_NAME,
                            "occurred_at": at,
                            "day": day.isoformat(),
                        }
                        for at, n in _event_times(day, visitors, events_per_day)
                    ],
                )
    finally:
        engine.dispose()
    return build_workload(days, visitors, events_per_day)
