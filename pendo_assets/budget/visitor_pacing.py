"""The one-event-a-second-per-visitor rule, held by whoever sends to a destination."""

from __future__ import annotations

from typing import Protocol

CLAIM_HOLD_SECONDS = 60.0  # a claim of a sender that died frees itself after this long
HELD_RETRY_SECONDS = 0.2  # how soon to ask again for a visitor whose event is in flight
_RELEASED_WITHIN = 5.0  # a wait longer than this means "in flight", not "released"


def retry_after(wait: float) -> float:
    """How long to wait before claiming again, from how long the visitor's row says it is
    taken: a released visitor's gap as it is; an event in flight (a hold of a minute) is
    asked about again shortly, as its answer usually comes within milliseconds."""
    if wait <= 0:
        return 0.0
    return wait if wait <= _RELEASED_WITHIN else HELD_RETRY_SECONDS


class VisitorPacing(Protocol):
    """Claims on visitors of one destination, shared by every run that sends to it.

    A sender claims a visitor before sending one of its events and releases it when the answer
    came, free again `gap` seconds later; a visitor is claimed by one sender at a time, so two
    runs with events of the same visitor never send them closer than the gap.
    """

    def claim(self, visitor: str) -> float:
        """0.0 when this caller now holds the visitor, else the seconds until it may try again
        (`retry_after`)."""
        ...

    def release(self, visitor: str, free_in: float) -> None:
        """The caller's event got its answer: the visitor is free `free_in` seconds from now."""
        ...

    def close(self) -> None: ...
