"""The demo warehouse: made-up product data in three tables, with a known set of bad rows.

``make demo`` and ``make dev`` build it into an embedded SQLite file and sync it into the local
Pendo sandbox. Every value comes from ``random.Random(seed)`` and ``today``, so the same seed and
day always give the same rows. Each table is partitioned by a different kind of column, all
spread over the 7 UTC days before ``today`` (today-7 .. today-1, never today):

- ``visitors.updated_at``: TIMESTAMP, naive UTC;
- ``accounts.updated_at``: ISO-8601 text, ``Z`` for most rows, a few with a non-UTC offset;
- ``events.occurred_at``: epoch milliseconds.

Deliberately bad rows, a few of each, named in ``DemoWarehouseSummary.bad_rows`` so the demo can
point at them (rows without an id are named by email or company name instead):

- ``visitors_null_id``: ``id`` is NULL (named by email).
- ``visitors_empty_id``: ``id`` is ``''`` (named by email).
- ``visitors_text_seats``: ``seats`` holds the text ``'lots'``; SQLite keeps text it cannot read
  as a number in an INTEGER column. Only made on SQLite; other databases refuse it.
- ``visitors_duplicate_id``: two rows for one id on the same day with different ``updated_at``;
  the later row should win downstream.
- ``accounts_null_id``: ``id`` is NULL (named by company name).
- ``events_null_visitor_id``: ``visitor_id`` is NULL.
- ``events_empty_event_name``: ``event_name`` is ``''``.
- ``events_bad_property_name``: ``properties`` has a key Pendo hides (``2fast``, ``has-dash``).
- ``events_properties_too_large``: ``properties`` JSON is over Pendo's 512 bytes.
- ``events_properties_not_json``: ``properties`` text is not JSON.
- ``events_older_than_7_days``: ``occurred_at`` is 9 days before ``today``; these land in an
  older partition, and Pendo's regular jobs skip events that old.

Valid rows that exercise edge cases, named in ``DemoWarehouseSummary.edge_rows``:

- ``accounts_non_utc_offset``: ``updated_at`` with an offset such as ``+02:00``; the first one
  falls on the next day in local time, so only reading it as UTC puts it in the right partition.
- ``event_burst_visitors``: visitors with several events within one second, to exercise Pendo's
  one-event-per-visitor-per-second pacing. Any two other events of one visitor are more than a
  second apart.

Run ``python -m pendo_assets.demo.warehouse_data --url sqlite:///path.db [--today YYYY-MM-DD]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

DAYS = 7
OLD_EVENT_AGE_DAYS = 9
BAD_ROWS_PER_KIND = 2
DUPLICATE_VISITORS = 3
MIN_SIZES = {"visitors": 50, "accounts": 10, "events": 100}
BAD_ROW_KINDS = (
    "visitors_null_id",
    "visitors_empty_id",
    "visitors_text_seats",
    "visitors_duplicate_id",
    "accounts_null_id",
    "events_null_visitor_id",
    "events_empty_event_name",
    "events_bad_property_name",
    "events_properties_too_large",
    "events_properties_not_json",
    "events_older_than_7_days",
)
EDGE_ROW_KINDS = ("accounts_non_utc_offset", "event_burst_visitors")

metadata = sa.MetaData()
visitors_table = sa.Table(
    "visitors",
    metadata,
    sa.Column("id", sa.Text),
    sa.Column("account_id", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("plan", sa.Text),
    sa.Column("seats", sa.Integer),
    sa.Column("is_trial", sa.Boolean),
    sa.Column("signup_date", sa.DateTime),
    sa.Column("updated_at", sa.DateTime),
)
accounts_table = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("tier", sa.Text),
    sa.Column("arr", sa.Float),
    sa.Column("updated_at", sa.Text),
)
events_table = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", sa.Text),
    sa.Column("visitor_id", sa.Text),
    sa.Column("account_id", sa.Text),
    sa.Column("event_name", sa.Text),
    sa.Column("occurred_at", sa.BigInteger),
    sa.Column("feature", sa.Text),
    sa.Column("duration_ms", sa.Integer),
    sa.Column("properties", sa.Text),
    sa.Column("ip", sa.Text),
    sa.Column("user_agent", sa.Text),
    sa.Column("url", sa.Text),
)

# -- word lists --------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "ada alan alice amara ben carla chen dana diego elena emma farah felix grace hana ivan "
    "jamal jana kai kenji laura leo lina marco maya mei nadia noah olga omar priya rafael "
    "rosa sam sara tariq uma victor wei yara zoe aiko bruno chloe dmitri esther finn giulia "
    "hugo ines jonas kofi lars mira nikos oscar paula ravi sofia theo vera yusuf"
)
LAST_NAMES = _words(
    "abbott alvarez baker bianchi brooks chandra costa dubois eriksen fischer garcia haddad "
    "hughes ibrahim jensen kim kowalski larsen lopez mendes moreau nakamura novak okafor "
    "olsen patel quinn rossi sato schmidt silva singh tanaka torres vogel wagner walsh "
    "yamamoto zhang andersen becker castillo dimitrov evans ferreira gupta hoffmann ivanova "
    "jovanovic keller lindqvist murphy nguyen oconnor petrov reyes suzuki"
)
COMPANY_FIRST = _words(
    "Acme Apex Aurora Beacon Blue Bright Cedar Cobalt Copper Crimson Delta Evergreen Falcon "
    "Granite Harbor Horizon Ironwood Juniper Keystone Lumen Maple Meridian Northwind Oakridge "
    "Orbit Pioneer Quartz Redwood Silverline Summit Tidewater Vertex Willow Zenith"
)
COMPANY_SECOND = _words(
    "Analytics Biotech Capital Cloud Data Dynamics Energy Foods Health Labs Learning Logistics "
    "Media Networks Robotics Security Software Solutions Systems Travel"
)
COMPANY_SUFFIXES = ("", " Inc.", " LLC", " Ltd", " GmbH", " Group", " Co.")
TIERS = ("smb", "mid-market", "enterprise")
TIER_WEIGHTS = (60, 30, 10)
ARR_RANGES = {"smb": (1e3, 25e3), "mid-market": (25e3, 250e3), "enterprise": (250e3, 2.5e6)}
PLANS = ("free", "starter", "pro", "enterprise")
PLAN_WEIGHTS = {
    "smb": (40, 40, 18, 2),
    "mid-market": (15, 30, 45, 10),
    "enterprise": (5, 10, 35, 50),
}
SEAT_RANGES = {"free": (1, 5), "starter": (1, 25), "pro": (5, 150), "enterprise": (50, 500)}
NON_UTC_OFFSETS = ("+02:00", "-05:00", "+05:30", "+09:00", "-08:00")

# event name -> (weight, feature, properties): a tuple of words is a choice, of two ints a range.
EVENT_KINDS: dict[str, tuple[int, str | None, dict[str, tuple[Any, ...]]]] = {
    "Dashboard Viewed": (30, "dashboards", {"dashboard": ("sales", "usage"), "widgets": (1, 24)}),
    "Report Exported": (15, "reports", {"format": ("csv", "pdf", "xlsx"), "rows": (10, 50_000)}),
    "Search Performed": (15, "search", {"query_length": (1, 60), "results": (0, 500)}),
    "Invite Sent": (8, "team", {"role": ("viewer", "editor", "admin"), "invitees": (1, 10)}),
    "Project Created": (7, "projects", {"template": ("blank", "kanban", "roadmap")}),
    "File Uploaded": (7, "files", {"file_type": ("png", "pdf", "csv"), "size_kb": (1, 20_000)}),
    "Comment Added": (7, "collaboration", {"mentions": (0, 4)}),
    "Settings Changed": (5, "settings", {"section": ("profile", "billing", "notifications")}),
    "Integration Connected": (3, "integrations", {"integration": ("slack", "jira", "github")}),
    "Alert Configured": (3, None, {"channel": ("email", "slack"), "threshold": (1, 100)}),
}
EVENT_NAMES = tuple(EVENT_KINDS)
EVENT_WEIGHTS = tuple(kind[0] for kind in EVENT_KINDS.values())
USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
)
IP_PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.")  # documentation ranges, never real
FILLER_WORDS = _words("region emea apac amer segment plan status active trial renewal owner")


@dataclass(frozen=True)
class DemoWarehouseSummary:
    """What was built: row counts, the days covered, and where the bad and edge rows are."""

    url: str
    today: date
    seed: int
    counts: dict[str, int]
    partitions: tuple[str, ...]
    """The 7 days before ``today``, oldest first (the old events sit in an earlier day)."""
    bad_rows: dict[str, tuple[str, ...]]
    edge_rows: dict[str, tuple[str, ...]]
    partition_counts: dict[str, dict[str, int]]

    def rows_per_partition(self, table: str) -> dict[str, int]:
        """Rows of ``table`` per UTC day of its partition column, oldest day first."""
        return dict(self.partition_counts[table])

    def describe(self) -> str:
        """A plain-text report for the CLI and the demo's log."""
        lines = [f"Demo warehouse at {self.url} (seed {self.seed}, today {self.today})"]
        lines.append(", ".join(f"{table}: {n} rows" for table, n in self.counts.items()))
        days = sorted({day for counts in self.partition_counts.values() for day in counts})
        lines.append("rows per partition:")
        lines.append("  day         " + " ".join(f"{table:>9}" for table in self.counts))
        for day in days:
            cells = " ".join(f"{self.partition_counts[t].get(day, 0):>9}" for t in self.counts)
            lines.append(f"  {day}  {cells}")
        for title, groups in (("bad rows:", self.bad_rows), ("edge rows:", self.edge_rows)):
            lines.append(title)
            lines += [f"  {kind} ({len(ids)}): {', '.join(ids)}" for kind, ids in groups.items()]
        return "\n".join(lines)


def build_demo_warehouse(
    url: str,
    *,
    today: date | None = None,
    seed: int = 7,
    visitors: int = 3000,
    accounts: int = 300,
    events: int = 20000,
    bad_rows_recent: bool = False,
) -> DemoWarehouseSummary:
    """Drop and recreate ``visitors``, ``accounts`` and ``events`` at ``url`` and fill them.

    The counts are exact table sizes, bad and edge rows included. ``bad_rows_recent`` puts the
    bad visitor and event rows in the three most recent days, the partitions ``make demo``
    syncs (by default they are spread from the oldest day on).
    """
    sizes = {"visitors": visitors, "accounts": accounts, "events": events}
    for table, size in sizes.items():
        if size < MIN_SIZES[table]:
            raise ValueError(f"{table} must be at least {MIN_SIZES[table]}, got {size}")
    today = today or datetime.now(UTC).date()
    engine = sa.create_engine(url)
    try:
        _make_sqlite_parent_dir(engine.url)
        text_seats = engine.dialect.name == "sqlite"
        generator = _Generator(
            random.Random(seed), today, text_seats=text_seats, bad_rows_recent=bad_rows_recent
        )
        account_rows = generator.accounts(accounts)
        tiers = {row["id"]: row["tier"] for row in account_rows if row["id"] is not None}
        visitor_rows = generator.visitors(visitors, tiers)
        visitor_accounts = {row["id"]: row["account_id"] for row in visitor_rows if row["id"]}
        event_rows = generator.events(events, visitor_accounts)
        with engine.begin() as conn:
            metadata.drop_all(conn)
            metadata.create_all(conn)
            conn.execute(accounts_table.insert(), account_rows)
            _insert_visitors(conn, visitor_rows)
            conn.execute(events_table.insert(), event_rows)
        shown_url = engine.url.render_as_string(hide_password=True)
    finally:
        engine.dispose()
    return DemoWarehouseSummary(
        url=shown_url,
        today=today,
        seed=seed,
        counts={"visitors": visitors, "accounts": accounts, "events": events},
        partitions=tuple(str(today - timedelta(days=n)) for n in range(DAYS, 0, -1)),
        bad_rows={kind: generator.bad_rows[kind] for kind in BAD_ROW_KINDS},
        edge_rows={kind: generator.edge_rows[kind] for kind in EDGE_ROW_KINDS},
        partition_counts={
            "visitors": _count_days(row["updated_at"].date() for row in visitor_rows),
            "accounts": _count_days(_iso_utc_date(row["updated_at"]) for row in account_rows),
            "events": _count_days(_epoch_ms_date(row["occurred_at"]) for row in event_rows),
        },
    )


def _make_sqlite_parent_dir(url: sa.URL) -> None:
    """A fresh checkout has no data directory yet; SQLite would fail to open the file."""
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _insert_visitors(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Bulk insert; the 'lots' rows go through a TEXT literal so no type processing touches them."""
    text_seats = [row for row in rows if isinstance(row["seats"], str)]
    conn.execute(visitors_table.insert(), [row for row in rows if isinstance(row["seats"], int)])
    if text_seats:
        statement = visitors_table.insert().values(seats=sa.literal("lots", sa.Text()))
        conn.execute(statement, [{k: v for k, v in r.items() if k != "seats"} for r in text_seats])


def _count_days(days: Iterable[date]) -> dict[str, int]:
    return {str(day): n for day, n in sorted(Counter(days).items())}


def _iso_utc_date(text: str) -> date:
    return datetime.fromisoformat(text).astimezone(UTC).date()


def _epoch_ms_date(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


class _Generator:
    """Row makers sharing one random stream, so the order of calls fixes every value."""

    def __init__(
        self, rng: random.Random, today: date, *, text_seats: bool, bad_rows_recent: bool = False
    ) -> None:
        self.rng = rng
        self.bad_rows_recent = bad_rows_recent
        self.today = today
        self.text_seats = text_seats
        self.window_start = datetime.combine(today - timedelta(days=DAYS), time())
        self.bad_rows: dict[str, tuple[str, ...]] = {}
        self.edge_rows: dict[str, tuple[str, ...]] = {}

    def bad_day(self, k: int, default: int) -> int:
        """The day of the k-th bad row: the last three days when asked, else ``default``."""
        return DAYS - 1 - k % 3 if self.bad_rows_recent else default

    def moment(self, day: int, *, start_s: int = 0, end_s: int = 86_400) -> datetime:
        """A whole-second naive UTC time on day ``day`` of the window (0 = today-7)."""
        seconds = self.rng.randrange(start_s, end_s)
        return self.window_start + timedelta(days=day, seconds=seconds)

    # -- accounts ------------------------------------------------------------------------------

    def accounts(self, n: int) -> list[dict[str, Any]]:
        rng = self.rng
        good = n - BAD_ROWS_PER_KIND
        names = self.company_names(n)
        rows = []
        for i in range(n):
            tier = rng.choices(TIERS, TIER_WEIGHTS)[0]
            rows.append(
                {
                    "id": f"account-{i + 1:04d}" if i < good else None,
                    "name": names[i],
                    "tier": tier,
                    "arr": round(rng.uniform(*ARR_RANGES[tier]), 2),
                    "updated_at": self.moment(i % DAYS).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )
        # Offsets only on the middle days: a local date one day off still lies in the window.
        middle = [i for i in range(good) if 1 <= i % DAYS <= DAYS - 2]
        offset_rows = sorted(rng.sample(middle, len(NON_UTC_OFFSETS)))
        for k, (i, offset) in enumerate(zip(offset_rows, NON_UTC_OFFSETS, strict=True)):
            utc = self.moment(i % DAYS, start_s=23 * 3600) if k == 0 else self.moment(i % DAYS)
            hours, minutes = map(int, offset[1:].split(":"))
            sign = -1 if offset[0] == "-" else 1
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
            rows[i]["updated_at"] = utc.replace(tzinfo=UTC).astimezone(zone).isoformat()
        self.bad_rows["accounts_null_id"] = tuple(row["name"] for row in rows[good:])
        self.edge_rows["accounts_non_utc_offset"] = tuple(rows[i]["id"] for i in offset_rows)
        rng.shuffle(rows)
        return rows

    def company_names(self, n: int) -> list[str]:
        """Distinct names while the word lists allow, numbered after that."""
        rng, names, seen = self.rng, [], set()
        for i in range(n):
            for _ in range(20):
                first, second = rng.choice(COMPANY_FIRST), rng.choice(COMPANY_SECOND)
                name = f"{first} {second}{rng.choice(COMPANY_SUFFIXES)}"
                if name not in seen:
                    break
            else:
                name = f"{name} {i + 1}"
            seen.add(name)
            names.append(name)
        return names

    # -- visitors ------------------------------------------------------------------------------

    def visitors(self, n: int, tiers: dict[str, str]) -> list[dict[str, Any]]:
        """Good visitors, then the duplicates, the text seats and the id-less rows."""
        rng = self.rng
        nameless = 2 * BAD_ROWS_PER_KIND
        good = n - nameless - DUPLICATE_VISITORS
        emails: set[str] = set()
        account_ids = sorted(tiers)
        rows = [
            self.visitor(f"visitor-{i + 1:05d}", i % DAYS, account_ids, tiers, emails)
            for i in range(good)
        ]
        picked = rng.sample(range(good), DUPLICATE_VISITORS + 1)
        duplicated, text_seats = picked[:DUPLICATE_VISITORS], picked[DUPLICATE_VISITORS:]
        for i in duplicated:
            first = rows[i]
            day = (first["updated_at"] - self.window_start).days
            first["updated_at"] = self.moment(day, end_s=12 * 3600)
            plan = rng.choice(PLANS)
            later = dict(first, plan=plan, seats=rng.randint(*SEAT_RANGES[plan]))
            later["updated_at"] = self.moment(day, start_s=12 * 3600)
            rows.append(later)
        if not self.text_seats:
            text_seats = []
        for i in text_seats:
            rows[i]["seats"] = "lots"
        bad = [
            self.visitor(
                None if k < BAD_ROWS_PER_KIND else "",
                self.bad_day(k, k),
                account_ids,
                tiers,
                emails,
            )
            for k in range(nameless)
        ]
        self.bad_rows["visitors_null_id"] = tuple(row["email"] for row in bad[:BAD_ROWS_PER_KIND])
        self.bad_rows["visitors_empty_id"] = tuple(row["email"] for row in bad[BAD_ROWS_PER_KIND:])
        self.bad_rows["visitors_text_seats"] = tuple(rows[i]["id"] for i in text_seats)
        self.bad_rows["visitors_duplicate_id"] = tuple(sorted(rows[i]["id"] for i in duplicated))
        rows += bad
        rng.shuffle(rows)
        return rows

    def visitor(
        self,
        visitor_id: str | None,
        day: int,
        account_ids: list[str],
        tiers: dict[str, str],
        emails: set[str],
    ) -> dict[str, Any]:
        """One visitor whose plan and seats fit their account's tier."""
        rng = self.rng
        account_id = rng.choice(account_ids)
        plan = rng.choices(PLANS, PLAN_WEIGHTS[tiers[account_id]])[0]
        signed_up_ago = timedelta(seconds=rng.randrange((DAYS + 1) * 86_400, 365 * 86_400))
        return {
            "id": visitor_id,
            "account_id": account_id,
            "email": self.email(emails),
            "plan": plan,
            "seats": rng.randint(*SEAT_RANGES[plan]),
            "is_trial": plan in ("starter", "pro") and rng.random() < 0.25,
            "signup_date": datetime.combine(self.today, time()) - signed_up_ago,
            "updated_at": self.moment(day),
        }

    def email(self, taken: set[str]) -> str:
        local = f"{self.rng.choice(FIRST_NAMES)}.{self.rng.choice(LAST_NAMES)}"
        email = f"{local}@example.com"
        for n in itertools.count(2):
            if email not in taken:
                break
            email = f"{local}{n}@example.com"
        taken.add(email)
        return email

    # -- events --------------------------------------------------------------------------------

    def events(self, n: int, visitor_accounts: dict[str, str]) -> list[dict[str, Any]]:
        """Events paced like real users, plus bursts and bad rows; ids follow time order."""
        rng = self.rng
        visitor_ids = sorted(visitor_accounts)
        # A few heavy users and a long tail, as in real product analytics.
        activity = list(itertools.accumulate(min(rng.paretovariate(1.2), 50) for _ in visitor_ids))
        taken: dict[str, set[int]] = defaultdict(set)  # epoch seconds used per visitor

        def paced(visitor_id: str, day: int) -> dict[str, Any]:
            """An event in a second at least two away from the visitor's other seconds.

            So two of a visitor's events are over 1000 ms apart unless they are a burst.
            """
            while True:
                second = int(self.moment(day).replace(tzinfo=UTC).timestamp())
                if taken[visitor_id].isdisjoint((second - 1, second, second + 1)):
                    taken[visitor_id].add(second)
                    ms = second * 1000 + rng.randrange(1000)
                    return self.event(visitor_id, visitor_accounts[visitor_id], ms)

        def someone() -> str:
            return rng.choices(visitor_ids, cum_weights=activity)[0]

        bursts = max(2, n // 1000)
        burst_sizes = [rng.randint(3, 5) for _ in range(bursts)]
        burst_visitors = rng.sample(visitor_ids, bursts)
        kinds: list[tuple[str, dict[str, Any]]] = []
        for k, (visitor_id, size) in enumerate(zip(burst_visitors, burst_sizes, strict=True)):
            second = int(self.moment(k % DAYS).replace(tzinfo=UTC).timestamp())
            taken[visitor_id].add(second)
            name = rng.choice(EVENT_NAMES)  # a script or a double click repeating one action
            for ms in sorted(rng.sample(range(1000), size)):
                account_id = visitor_accounts[visitor_id]
                kinds.append(
                    ("burst", self.event(visitor_id, account_id, second * 1000 + ms, name))
                )

        bad_kinds = [kind for kind in BAD_ROW_KINDS if kind.startswith("events_")]
        for k, kind in enumerate(bad_kinds * BAD_ROWS_PER_KIND):
            day = (
                DAYS - OLD_EVENT_AGE_DAYS
                if kind == "events_older_than_7_days"
                else self.bad_day(k, k % DAYS)
            )
            kinds.append((kind, self.spoil(kind, k // len(bad_kinds), paced(someone(), day))))
        for i in range(n - len(kinds)):
            kinds.append(("normal", paced(someone(), i % DAYS)))

        order = sorted(range(len(kinds)), key=lambda i: kinds[i][1]["occurred_at"])
        width = max(6, len(str(n)))
        named: dict[str, list[str]] = defaultdict(list)
        rows = []
        for number, i in enumerate(order, start=1):
            kind, row = kinds[i]
            row["event_id"] = f"evt-{number:0{width}d}"
            named[kind].append(row["event_id"])
            rows.append(row)
        for kind in bad_kinds:
            self.bad_rows[kind] = tuple(named[kind])
        self.edge_rows["event_burst_visitors"] = tuple(sorted(burst_visitors))
        return rows

    def event(
        self, visitor_id: str, account_id: str, occurred_at: int, name: str | None = None
    ) -> dict[str, Any]:
        """One well-formed event; its name is drawn by popularity unless given."""
        rng = self.rng
        name = name or rng.choices(EVENT_NAMES, EVENT_WEIGHTS)[0]
        _, feature, spec = EVENT_KINDS[name]
        properties = None if rng.random() < 0.2 else json.dumps(self.properties(spec))
        path = feature or "home"
        return {
            "event_id": None,
            "visitor_id": visitor_id,
            "account_id": account_id,
            "event_name": name,
            "occurred_at": occurred_at,
            "feature": feature,
            "duration_ms": int(rng.lognormvariate(7.5, 1.2)),
            "properties": properties,
            "ip": rng.choice(IP_PREFIXES) + str(rng.randint(1, 254)),
            "user_agent": rng.choice(USER_AGENTS),
            "url": f"https://app.example.com/{path}/{rng.randint(1, 9999)}",
        }

    def properties(self, spec: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
        """Small properties from an ``EVENT_KINDS`` spec: a pick from words, or an int in range."""
        rng = self.rng
        return {
            key: rng.randint(*values) if isinstance(values[0], int) else rng.choice(values)
            for key, values in spec.items()
        }

    def spoil(self, kind: str, k: int, event: dict[str, Any]) -> dict[str, Any]:
        """Turn a good event into the ``k``-th bad row of ``kind``."""
        if kind == "events_null_visitor_id":
            return dict(event, visitor_id=None)
        if kind == "events_empty_event_name":
            return dict(event, event_name="")
        if kind == "events_bad_property_name":
            properties = json.loads(event["properties"] or "{}")
            properties[("2fast", "has-dash")[k % 2]] = True
            return dict(event, properties=json.dumps(properties))
        if kind == "events_properties_too_large":
            words = [self.rng.choice(FILLER_WORDS) for _ in range(120)]
            return dict(event, properties=json.dumps({"filters": " ".join(words)}))
        if kind == "events_properties_not_json":
            text = ("{'format': 'csv'}", '{"format": "csv"')[k % 2]  # Python repr; truncated
            return dict(event, properties=text)
        return event  # events_older_than_7_days: its day is the whole point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pendo_assets.demo.warehouse_data",
        description="Build the demo warehouse (drops and recreates its three tables).",
    )
    parser.add_argument("--url", required=True, help="SQLAlchemy URL, e.g. sqlite:///demo.db")
    parser.add_argument("--today", type=date.fromisoformat, help="YYYY-MM-DD (default: UTC today)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--visitors", type=int, default=3000)
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args(argv)
    try:
        summary = build_demo_warehouse(
            args.url,
            today=args.today,
            seed=args.seed,
            visitors=args.visitors,
            accounts=args.accounts,
            events=args.events,
        )
    except (ValueError, sa.exc.SQLAlchemyError) as exc:
        parser.error(str(exc))
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
