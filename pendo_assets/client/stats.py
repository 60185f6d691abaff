"""Counters of what the client did, read by the sync reports built on it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields


@dataclass
class StatsSnapshot:
    requests: int = 0
    retries: int = 0
    records_retried: int = 0
    batch_splits: int = 0
    bisections: int = 0
    in_doubt: int = 0  # non-idempotent requests that may have been applied, answer lost


class ClientStats:
    """Thread-safe counters; `snapshot()` gives a consistent copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = StatsSnapshot()

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, amount in increments.items():
                setattr(self._values, name, getattr(self._values, name) + amount)

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                **{f.name: getattr(self._values, f.name) for f in fields(self._values)}
            )
