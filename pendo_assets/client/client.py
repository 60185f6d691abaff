"""`PendoClient`: the one object the sync engine and the Dagster resource talk to."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from .credentials import CREDENTIALS, INTEGRATION_KEY, TRACK_EVENT_SECRET, load_credential
from .destination import destination_id
from .errors import MissingCredentialError, PendoRequestError
from .metadata import MetadataBatchWriter, metadata_path
from .models import AcceptedRecords, MetadataRecord, MetadataSchema, RecordResult, TrackEvent
from .rate_limit import LocalRateBudget, RateBudget
from .regions import normalize_region, resolve_base_url
from .retry import RetryPolicy
from .schema import parse_schema, schema_path
from .scrub import Scrubber
from .secret import Secret
from .stats import ClientStats, StatsSnapshot
from .track import TRACK_PATH, track_result
from .transport import Outcome, Transport, response_message

USER_AGENT = "pendo-assets/0.1"
DEFAULT_BATCH_SIZE = 1000


class PendoClient:
    """Pendo's write API over httpx. Safe to share between threads (one connection pool).

    Credentials are stripped of surrounding whitespace and checked here, so a pasted key with
    a stray control character fails at once with PendoConfigError naming its variable.
    """

    def __init__(
        self,
        *,
        region: str | None = "us",
        integration_key: str | Secret | None = None,
        track_event_secret: str | Secret | None = None,
        base_url: str | None = None,
        track_base_url: str | None = None,
        timeout_seconds: float = 30.0,
        retry: RetryPolicy | None = None,
        max_requests_per_second: float | None = None,
        rate_budget: RateBudget | None = None,
        max_connections: int = 32,
        batch_size: int = DEFAULT_BATCH_SIZE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        http_transport: httpx.BaseTransport | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._integration_key = load_credential(integration_key, INTEGRATION_KEY)
        self._track_event_secret = load_credential(track_event_secret, TRACK_EVENT_SECRET)
        self.region = normalize_region(region)
        self.base_url = resolve_base_url(self.region, base_url)
        self.track_base_url = resolve_base_url(self.region, track_base_url or base_url)
        self.batch_size = batch_size
        self.stats = ClientStats()
        self.max_requests_per_second = max_requests_per_second
        self.rate_budget = rate_budget or LocalRateBudget(clock=clock, sleep=sleep)
        self._http = http_transport or httpx.HTTPTransport(
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            )
        )
        self._transport = Transport(
            self._http,
            timeout=httpx.Timeout(timeout_seconds),
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            retry=retry or RetryPolicy(),
            limiters={
                name: self.rate_budget.limiter(self.destination(name), max_requests_per_second)
                for name in (INTEGRATION_KEY, TRACK_EVENT_SECRET)
            },
            stats=self.stats,
            sleep=sleep,
            clock=clock,
            rng=rng or random.Random(),
            scrub=Scrubber(_raw(v) for v in (integration_key, track_event_secret)),
        )

    def __repr__(self) -> str:
        return (
            f"PendoClient(region={self.region!r}, base_url={self.base_url!r}, "
            f"integration_key={'set' if self._integration_key else 'unset'}, "
            f"track_event_secret={'set' if self._track_event_secret else 'unset'})"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PendoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats_snapshot(self) -> StatsSnapshot:
        return self.stats.snapshot()

    def destination(self, credential: str) -> str:
        """Where requests made with `credential` go, safe to store and print.

        `credential` is "integration_key" (metadata) or "track_event_secret" (track events).
        The answer is the base URL, "#", and the first 16 hex characters of a domain-separated
        sha256 of the stripped credential ("none" when unset), at most 300 characters: a new
        region, base URL or key gives a new destination, and the key cannot be recovered.
        """
        if credential == INTEGRATION_KEY:
            return destination_id(self.base_url, self._integration_key)
        if credential == TRACK_EVENT_SECRET:
            return destination_id(self.track_base_url, self._track_event_secret)
        raise ValueError(
            f"credential must be {INTEGRATION_KEY!r} or {TRACK_EVENT_SECRET!r}, got {credential!r}"
        )

    # -- metadata ----------------------------------------------------------------------------

    def write_metadata_batch(
        self,
        kind: str,
        records: Sequence[MetadataRecord],
        *,
        group: str = "custom",
        create: bool = False,
    ) -> Sequence[RecordResult]:
        """Write one batch (callers may run many at once from threads): one result per
        record, in order (`AcceptedRecords` when Pendo accepted the whole batch)."""
        url = self.base_url + metadata_path(kind, group)
        key = self._require_integration_key()
        params = {"create": "true"} if create else None

        def send(payload: list[dict[str, Any]] | str) -> Outcome:
            encoded = payload.encode("utf-8") if isinstance(payload, str) else None
            return self._transport.request(
                "POST",
                url,
                credential=key,
                credential_name=INTEGRATION_KEY,
                json=None if encoded is not None else payload,
                content=encoded,
                params=params,
            )

        writer = MetadataBatchWriter(
            send, kind=kind, count_split=lambda name: self.stats.add(**{name: 1})
        )
        results = writer.write(records)
        if isinstance(results, AcceptedRecords):
            retried = len(results) if results.retried else 0
        else:
            retried = sum(1 for r in results if r.retried)
        if retried:
            self.stats.add(records_retried=retried)
        return results

    def read_schema(self, kind: str) -> MetadataSchema:
        """The custom and agent fields Pendo has for visitors or accounts, with their types."""
        metadata_path(kind, "custom")  # validates kind
        outcome = self._transport.request(
            "GET",
            self.base_url + schema_path(kind),
            credential=self._require_integration_key(),
            credential_name=INTEGRATION_KEY,
        )
        response = outcome.response
        if not 200 <= response.status_code < 300:
            raise PendoRequestError(
                f"Reading Pendo's {kind} metadata schema failed: HTTP {response.status_code} "
                f"{response_message(response)}",
                status=response.status_code,
            )
        return parse_schema(kind, response.json())

    # -- track events ------------------------------------------------------------------------

    def send_track_event(self, event: TrackEvent) -> RecordResult:
        """Send one event. Not idempotent, so it is resent only when it cannot have arrived.

        Connection failures, 408 and 429 are retried. A lost answer (read timeout, dropped
        connection) or a 5xx may come after Pendo recorded the event: that gives a failed
        result of kind IN_DOUBT, never a second send that could record it twice.
        """
        secret = self._require_track_secret()
        url = self.track_base_url + TRACK_PATH

        def send(payload: dict[str, Any]) -> Outcome:
            return self._transport.request(
                "POST",
                url,
                credential=secret,
                credential_name=TRACK_EVENT_SECRET,
                json=payload,
                idempotent=False,
            )

        result = track_result(event, send)
        if result.retried:
            self.stats.add(records_retried=1)
        return result

    # -- credentials -------------------------------------------------------------------------

    def _require_integration_key(self) -> Secret:
        if self._integration_key is None:
            known = CREDENTIALS[INTEGRATION_KEY]
            raise MissingCredentialError(
                "Metadata calls need a Pendo integration key with write access (set "
                f"{known.env_var}). {known.help_text}"
            )
        return self._integration_key

    def _require_track_secret(self) -> Secret:
        if self._track_event_secret is None:
            known = CREDENTIALS[TRACK_EVENT_SECRET]
            raise MissingCredentialError(
                "Sending track events needs the Track Event shared secret (set "
                f"{known.env_var}). {known.help_text}"
            )
        return self._track_event_secret


def _raw(value: str | Secret | None) -> str | None:
    """A credential exactly as given, for masking it in any spelling."""
    if value is None:
        return None
    return value.reveal() if isinstance(value, Secret) else str(value)
