"""One logical request to Pendo: rate limit, credential header, retries, auth errors.

Everything above this layer sees either a final response or an exception, never a retryable one.
Exception text from httpx is scrubbed of credentials before it is logged or raised.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .credentials import CREDENTIALS
from .errors import (
    PendoAuthError,
    PendoConfigError,
    PendoInDoubtError,
    PendoUnavailableError,
)
from .rate_limit import RateLimiter
from .retry import (
    CONFIGURATION_ERRORS,
    RetryPolicy,
    is_retryable_status,
    may_repeat_after_error,
    may_repeat_after_status,
    parse_retry_after,
)
from .secret import Secret
from .stats import ClientStats

logger = logging.getLogger("pendo_assets.client")

CREDENTIAL_HEADER = "x-pendo-integration-key"


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


#: URLs kept parsed: a client sends to a handful of paths (more only from a caller's mistake).
_PARSED_URLS_KEPT = 64
#: httpcore trace events after which the request is on the wire (HTTP/1.1 and HTTP/2).
_WRITTEN = frozenset({"http11.send_request_body.complete", "http2.send_request_body.complete"})


def _released_once_written(release: Callable[[], None]) -> Callable[[str, dict[str, Any]], None]:
    """An httpcore trace callback that ends the sender's turn once its request is written."""

    def trace(event_name: str, info: dict[str, Any]) -> None:
        if event_name in _WRITTEN:
            release()

    return trace


class Transport:
    """Sends requests over one shared, thread-safe httpx connection pool.

    Straight to httpx's transport (the pool), not through `httpx.Client`: Pendo's API uses no
    cookies, redirects, auth flows or event hooks, and skipping them per request measured
    0.87-0.96 ms of client CPU a track event instead of 1.13-1.15 ms (2-core AMD EPYC).
    """

    def __init__(
        self,
        http: httpx.BaseTransport,
        *,
        timeout: httpx.Timeout,
        headers: dict[str, str],
        retry: RetryPolicy,
        limiters: dict[str, RateLimiter],
        stats: ClientStats,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rng: random.Random,
        scrub: Callable[[str], str],
    ) -> None:
        self.http = http
        self._timeout = timeout.as_dict()
        self._headers = headers  # sent with every request, beneath the request's own
        self._urls: dict[str, httpx.URL] = {}
        self.retry = retry
        self.limiters = limiters  # by credential name: each credential is a destination
        self.stats = stats
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._scrub = scrub

    def request(
        self,
        method: str,
        url: str,
        *,
        credential: Secret,
        credential_name: str,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> Outcome:
        """Send until a final answer; raise on auth refusal or an exhausted retry budget.

        A request that is not `idempotent` is retried only when it cannot have reached Pendo;
        after any other failure it raises PendoInDoubtError at once.
        """
        started = self._clock()
        limiter = self.limiters[credential_name]
        attempt = 0
        while True:
            attempt += 1
            release = limiter.acquire()
            self.stats.add(requests=1)
            problem: str
            status: int | None = None
            retry_after: float | None = None
            unusable = False
            repeatable = True
            try:
                headers = {CREDENTIAL_HEADER: credential.reveal()}
                if content is not None:  # JSON the caller encoded itself
                    headers["Content-Type"] = "application/json"
                response = self._send(
                    httpx.Request(
                        method,
                        self._parsed(url),
                        params=params,
                        headers={**self._headers, **headers},
                        content=content,
                        json=json,
                        extensions={
                            "timeout": self._timeout,
                            "trace": _released_once_written(release),
                        },
                    )
                )
            except CONFIGURATION_ERRORS as exc:
                problem = self._describe(exc)
                unusable = True
            except httpx.TransportError as exc:
                problem = self._describe(exc)
                repeatable = may_repeat_after_error(exc, idempotent=idempotent)
                if not repeatable:
                    problem = f"answer lost ({problem})"
            else:
                status = response.status_code
                if status in (401, 403):
                    raise self._auth_error(method, url, status, credential_name)
                if not is_retryable_status(status):
                    return Outcome(response=response, attempts=attempt)
                problem = self._scrub(f"HTTP {status} {response_message(response)}".rstrip())
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if status == 429 and retry_after:
                    limiter.pause(retry_after)  # every sender to this destination waits
                repeatable = may_repeat_after_status(status, idempotent=idempotent)
            finally:
                release()  # written or not, the turn ends (a no-op once the trace released it)
            # Raised here, outside the except clauses, so no httpx exception (whose text may
            # hold a credential) rides along as __context__.
            if unusable:
                raise PendoConfigError(
                    f"Pendo {method} {httpx.URL(url).path} cannot be sent as configured: "
                    f"{problem}. Check the base URL and the credentials."
                )
            if not repeatable:
                self.stats.add(in_doubt=1)
                raise self._in_doubt(method, url, attempt, problem, status)

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

    def _parsed(self, url: str) -> httpx.URL:
        """The URL parsed once: a sync sends to one or two paths, request after request."""
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _PARSED_URLS_KEPT:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    def _send(self, request: httpx.Request) -> httpx.Response:
        """The whole response, read, with its connection back in the pool."""
        response = self.http.handle_request(request)
        response.request = request
        try:
            response.read()
        finally:
            response.close()
        return response

    def _describe(self, exc: Exception) -> str:
        """`Type: message` of a library exception, with every credential masked."""
        return self._scrub(f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _auth_error(method: str, url: str, status: int, credential_name: str) -> PendoAuthError:
        known = CREDENTIALS[credential_name]
        path = httpx.URL(url).path
        return PendoAuthError(
            f"Authentication failed: Pendo refused the {known.label} (HTTP {status} on {method} "
            f"{path}); it is invalid or lacks write access. {known.help_text}",
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

    @staticmethod
    def _in_doubt(
        method: str, url: str, attempts: int, problem: str, status: int | None
    ) -> PendoInDoubtError:
        path = httpx.URL(url).path
        return PendoInDoubtError(
            f"Pendo may have applied {method} {path}: {problem}; not sent again, as it is not "
            "safe to repeat",
            problem=problem,
            method=method,
            path=path,
            status=status,
            attempts=attempts,
        )
