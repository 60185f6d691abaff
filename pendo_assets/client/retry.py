"""Whether, when and how long to wait before trying a request again.

Idempotent requests (metadata writes, schema reads) are repeated after any transient failure.
A track event is repeated only when it cannot have reached Pendo: resending one that Pendo
kept, but whose answer was lost, would record it twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Pendo refused these before doing anything: too many requests, or the request never arrived.
NOT_APPLIED_STATUSES = frozenset({408, 429})
# Raised before a byte of the request went out.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
)
# The request cannot be built or sent as configured (a bad header value, URL or scheme):
# trying again would fail the same way.
CONFIGURATION_ERRORS: tuple[type[Exception], ...] = (
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
)


def is_retryable_status(status: int) -> bool:
    """408, 429 and every 5xx: a later try may succeed (a 5xx may also have been applied)."""
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def may_repeat_after_status(status: int, *, idempotent: bool) -> bool:
    """Whether a retryable status may be retried without risking a second effect."""
    return idempotent or status in NOT_APPLIED_STATUSES


def may_repeat_after_error(error: Exception, *, idempotent: bool) -> bool:
    """Whether a transport error may be retried without risking a second effect.

    A read or write error, a read timeout or a connection dropped mid-response may come after
    Pendo applied the request, so only errors raised before sending are safe for a track event.
    """
    return idempotent or isinstance(error, NOT_SENT_ERRORS)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by total time."""

    max_attempts: int = 5
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    total_budget_seconds: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.base_delay_seconds < 0 or self.max_delay_seconds < 0:
            raise ValueError("RetryPolicy delays must not be negative")
        if self.total_budget_seconds < 0:
            raise ValueError("RetryPolicy.total_budget_seconds must not be negative")

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Full jitter: uniform between 0 and the capped exponential step (retry_number from 1)."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (retry_number - 1))
        return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
