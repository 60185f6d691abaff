"""The figures the scale demo reports, computed from what the sandbox and Dagster recorded.

Pure functions over plain values, so each figure can be checked on its own against numbers
worked out by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BusiestWindow:
    """The most requests that arrived within one window of `width` seconds, and where it
    starts, in seconds after the first arrival."""

    requests: int
    starts_after_seconds: float


def busiest_window(arrivals: Iterable[float], width: float = 1.0) -> BusiestWindow:
    """The rolling window [t, t + width) holding the most arrivals; windows start at an
    arrival (the fullest window always can)."""
    times = sorted(arrivals)
    if not times:
        return BusiestWindow(0, 0.0)
    best, best_start, first = 0, times[0], 0
    for last, arrived in enumerate(times):
        while arrived - times[first] >= width:
            first += 1
        if last - first + 1 > best:
            best, best_start = last - first + 1, times[first]
    return BusiestWindow(best, best_start - times[0])


def combined_rate(arrivals: Sequence[float]) -> float:
    """Requests per second from the first arrival to the last: what all runs together got
    through (0 for fewer than two requests)."""
    if len(arrivals) < 2:
        return 0.0
    span = max(arrivals) - min(arrivals)
    return len(arrivals) / span if span > 0 else 0.0


def loaded_destination(arrivals_by_destination: Mapping[str, Sequence[float]]) -> str | None:
    """The destination that got the most requests: the one a backfill loads up to its cap
    (each destination has a cap of its own)."""
    return max(arrivals_by_destination, key=lambda d: len(arrivals_by_destination[d]), default=None)


def most_at_once(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals (start, end) open at one instant; one that ends as another starts
    does not overlap it."""
    spans = list(intervals)
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    open_now = most = 0
    for _, step in edges:
        open_now += step
        most = max(most, open_now)
    return most


def timeline(arrivals: Sequence[float], bucket: float = 5.0) -> list[int]:
    """Requests per `bucket` seconds from the first arrival: where the rate was lost."""
    if not arrivals:
        return []
    first = min(arrivals)
    counts = [0] * (int((max(arrivals) - first) // bucket) + 1)
    for arrived in arrivals:
        counts[int((arrived - first) // bucket)] += 1
    return counts


def open_per_bucket(
    intervals: Iterable[tuple[float, float]], first: float, buckets: int, bucket: float = 5.0
) -> list[int]:
    """How many intervals were open at the middle of each bucket after `first`."""
    spans = list(intervals)
    middles = [first + (n + 0.5) * bucket for n in range(buckets)]
    return [sum(1 for start, end in spans if start <= middle < end) for middle in middles]


@dataclass(frozen=True)
class Landing:
    """How the records that reached Pendo compare with the records the warehouse holds."""

    expected: int
    landed_once: int
    missing: int
    duplicates: int  # extra copies beyond the first, over all records
    unexpected: int  # records Pendo received that the warehouse does not hold

    @property
    def exactly_once(self) -> bool:
        return self.landed_once == self.expected and not (
            self.missing or self.duplicates or self.unexpected
        )

    @property
    def all_landed(self) -> bool:
        return self.missing == 0 and self.unexpected == 0


def landing(expected: Iterable[Hashable], received: Iterable[Hashable]) -> Landing:
    """Each expected record once, and nothing else, is exactly once."""
    wanted = set(expected)
    counts = Counter(received)
    return Landing(
        expected=len(wanted),
        landed_once=sum(1 for key in wanted if counts.get(key) == 1),
        missing=sum(1 for key in wanted if key not in counts),
        duplicates=sum(count - 1 for key, count in counts.items() if key in wanted),
        unexpected=sum(count for key, count in counts.items() if key not in wanted),
    )
