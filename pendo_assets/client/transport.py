"""One logical request to Pendo: rate limit, credential header, retries, auth errors.

Everything above this layer sees either a final response or an exception, never a retryable one.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import (
    INTEGRATION_KEY_HELP,
    TRACK_SECRET_HELP,
    PendoAuthError,
    PendoUnavailableError,
)
from .rate_limit import RateLimiter
from .retry import RetryPolicy, is_retryable_status, parse_retry_after
from .secret import Secret
from .stats import ClientStats

logger = logging.getLogger("pendo_assets.client")

CREDENTIAL_HEADER = "x-pendo-integration-key"
INTEGRATION_KEY = "integration_key"
TRACK_EVENT_SECRET = "track_event_secret"
_CREDENTIAL_LABELS = {
    INTEGRATION_KEY: ("integration key", INTEGRATION_KEY_HELP),
    TRACK_EVENT_SECRET: ("Track Event shared secret", TRACK_SECRET_HELP),
}


@dataclass(frozen=True)
class Outcome:
    """The final response of a request and how many attempts it took."""

    response: httpx.Response
    attempts: int

    @property
    def retried(self) -> bool:
        return self.attempts > 1


def response_message(response: httpx.Response, limit: int = 300) -> str:
    """Pendo's own words from an error response, short enough for a row result."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:limit].strip()
    if isinstance(body, dict):
        for key in ("message", "error", "errors"):
            if body.get(key):
                return str(body[key])[:limit]
    return str(body)[:limit]


class Transport:
    """Sends requests over one shared, thread-safe httpx connection pool."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        retry: RetryPolicy,
        limiter: RateLimiter,
        stats: ClientStats,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.http = http
        self.retry = retry
        self.limiter = limiter
        self.stats = stats
        self._sleep = sleep
        self._clock = clock
        self._rng = rng

    def request(
        self,
        method: str,
        url: str,
        *,
        credential: Secret,
        credential_name: str,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> Outcome:
        """Send until a final answer; raise on auth refusal or an exhausted retry budget."""
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
            self.stats.add(requests=1)
            problem: str
            status: int | None = None
            retry_after: float | None = None
            try:
                response = self.http.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={CREDENTIAL_HEADER: credential.reveal()},
                )
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status in (401, 403):
                    raise self._auth_error(method, url, status, credential_name)
                if not is_retryable_status(status):
                    return Outcome(response=response, attempts=attempt)
                problem = f"HTTP {status} {response_message(response)}".rstrip()
                retry_after = parse_retry_after(response.headers.get("retry-after"))

            elapsed = self._clock() - started
            remaining = self.retry.total_budget_seconds - elapsed
            if attempt >= self.retry.max_attempts:
                raise self._unavailable(method, url, attempt, elapsed, problem, status)
            delay = (
                retry_after if retry_after is not None else self.retry.backoff(attempt, self._rng)
            )
            if delay > remaining:
                raise self._unavailable(
                    method,
                    url,
                    attempt,
                    elapsed,
                    f"{problem}; waiting {delay:.1f}s more would exceed the retry budget",
                    status,
                )
            logger.warning(
                "Pendo %s %s failed (%s); retry %d of %d in %.2fs",
                method,
                httpx.URL(url).path,
                problem,
                attempt,
                self.retry.max_attempts - 1,
                delay,
            )
            self.stats.add(retries=1)
            if delay > 0:
                self._sleep(delay)

    @staticmethod
    def _auth_error(method: str, url: str, status: int, credential_name: str) -> PendoAuthError:
        label, help_text = _CREDENTIAL_LABELS[credential_name]
        path = httpx.URL(url).path
        return PendoAuthError(
            f"Authentication failed: Pendo refused the {label} (HTTP {status} on {method} {path}); "
            f"it is invalid or lacks write access. {help_text}",
            status=status,
            credential=credential_name,
        )

    @staticmethod
    def _unavailable(
        method: str, url: str, attempts: int, elapsed: float, problem: str, status: int | None
    ) -> PendoUnavailableError:
        path = httpx.URL(url).path
        return PendoUnavailableError(
            f"Pendo did not accept {method} {path} after {attempts} attempt(s) over "
            f"{elapsed:.1f}s; last problem: {problem}",
            status=status,
            attempts=attempts,
        )
