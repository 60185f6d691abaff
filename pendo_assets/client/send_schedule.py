"""When a destination's next send may go: the rule every rate limiter keeps (one process, one
host, or every host through PostgreSQL, which states it in SQL with the same constants).

Sends follow a schedule one interval (1/cap) apart. A send may come to its turn, or finish
writing, up to CATCH_UP_INTERVALS intervals late without moving the turns after it, so the
small delays of a busy machine do not add up to a lower rate; a longer stall is not made up,
and a sender that comes to an idle destination starts the schedule afresh. A window guard
holds every second to the cap: a send waits until the one `cap` sends before it was written
at least WINDOW_SECONDS ago (for caps above MAX_WINDOW_SENDS, the one 128 sends before, at
least its share of that). The guard's extra 50 ms leaves room for the jitter between a
write and its arrival; it also caps the long-run rate at 1/1.05 of the cap (95%).

Measured in the scale demo (cap 40, ten runs on two busy cores, arrivals at the sandbox):
timing each turn from the write before, with a tenth of an interval of slack, reached 86-88%
of the cap (the median gap 26.6 ms for 25); this schedule 93%, busiest second 40-41. Making
up two intervals, or a guard of 1.01-1.02 s, reached 95-99% but put 42-43 requests into the
busiest second, sandbox stalls bunching arrivals.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

CATCH_UP_INTERVALS = 1.0
WINDOW_SECONDS = 1.05
# Above this many sends a second the guard keeps the last 128 writes and holds them to their
# share of the window: every limiter reads and writes the window on each send (measured: with
# the whole cap of 100,000 as the window, the CLI's track events went 359 a second, not 521).
MAX_WINDOW_SENDS = 128


def _cap_whole(interval: float) -> int:
    return max(1, math.floor(1.0 / interval + 1e-9))


def window_sends(interval: float) -> int:
    """How many writes the guard keeps: the cap (1/interval), whole, at least one and at most
    MAX_WINDOW_SENDS; none without a cap (interval 0)."""
    return min(_cap_whole(interval), MAX_WINDOW_SENDS) if interval else 0


def window_span(interval: float) -> float:
    """How long ago the first of the kept writes must be before the next send: WINDOW_SECONDS,
    or its share for a window cut to MAX_WINDOW_SENDS (0 without a cap)."""
    return WINDOW_SECONDS * window_sends(interval) / _cap_whole(interval) if interval else 0.0


def slot_of(turn_at: float, admitted_at: float, interval: float) -> float:
    """The slot a sender admitted at `admitted_at` for the turn `turn_at` is counted at: its
    turn, unless the destination sat idle for longer than the catch-up (then its admission,
    so a quiet spell is not made up)."""
    return turn_at if turn_at >= admitted_at - CATCH_UP_INTERVALS * interval else admitted_at


def next_turn(slot_at: float, written_at: float, interval: float) -> float:
    """The next send's turn after one counted at `slot_at` finished writing at `written_at`:
    one interval after the slot, unless the write came more than the catch-up late."""
    return max(slot_at + interval, written_at + interval * (1.0 - CATCH_UP_INTERVALS))


class SendSchedule:
    """The schedule of one destination: the next turn and the last writes' times."""

    def __init__(
        self, interval: float, next_at: float = -math.inf, recent: Iterable[float] = ()
    ) -> None:
        self.interval = interval
        self.next_at = next_at
        self.recent: deque[float] = deque(recent, maxlen=window_sends(interval))

    def turn(self) -> float:
        """The earliest time the next send may go (before any pause)."""
        if self.recent.maxlen and len(self.recent) == self.recent.maxlen:
            return max(self.next_at, self.recent[0] + window_span(self.interval))
        return self.next_at

    def sent(self, turn_at: float, admitted_at: float, written_at: float) -> None:
        """A send admitted at `admitted_at` for the turn `turn_at` was written at `written_at`."""
        slot = slot_of(turn_at, admitted_at, self.interval)
        self.next_at = next_turn(slot, written_at, self.interval)
        self.recent.append(written_at)
