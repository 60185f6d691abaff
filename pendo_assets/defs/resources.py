"""The Pendo resource: typed, documented configuration over a plain `PendoClient`."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from pendo_assets.client import PendoClient, RetryPolicy
from pendo_assets.client.rate_limit import RateBudget
from pendo_assets.sync.engine import DEFAULT_MAX_IN_FLIGHT


class PendoResource(dg.ConfigurableResource):
    """Region and credentials for Pendo; hands out clients that share nothing with Dagster.

    Supply the credentials with `dg.EnvVar(...)` so the Dagster UI shows the variable's name,
    never its value.
    """

    region: str = Field(
        default="us",
        description="Pendo region: us, us1, eu, jp or au. A key works only in its own region.",
    )
    integration_key: str | None = Field(
        default=None,
        repr=False,
        description="Integration key with write access, for visitor and account metadata.",
    )
    track_event_secret: str | None = Field(
        default=None,
        repr=False,
        description="The app's Track Event shared secret, for track events only.",
    )
    base_url: str | None = Field(
        default=None,
        description="Replaces the region's host on every call (proxy, local sandbox).",
    )
    max_requests_per_second: float = Field(
        default=100.0,
        ge=0,
        description="Cap on requests per second to one Pendo destination (base URL and "
        "credential), summed over every run, step, thread, process and host that shares the "
        "sync state database. 0: no cap (a 429's Retry-After still pauses every sender).",
    )
    timeout_seconds: float = Field(default=30.0, description="Timeout of a single request.")
    max_attempts: int = Field(default=5, description="Attempts per request before giving up.")
    retry_budget_seconds: float = Field(
        default=120.0, description="Total time one request may spend retrying."
    )
    batch_size: int = Field(default=1000, description="Metadata records per request.")
    max_connections: int = Field(default=32, description="Size of the shared connection pool.")
    max_in_flight: int = Field(
        default=DEFAULT_MAX_IN_FLIGHT,
        description="Most requests in flight at once within one sync step.",
    )

    def get_client(self, rate_budget: RateBudget | None = None) -> PendoClient:
        """A new client; close it (or use it as a context manager) when the step is done.

        Clients given one `rate_budget` (the sync state's, see `SyncStateResource.budget`)
        share the cap of each destination; without one, the cap holds for this client only.
        """
        return PendoClient(
            rate_budget=rate_budget,
            region=self.region,
            integration_key=self.integration_key,
            track_event_secret=self.track_event_secret,
            base_url=self.base_url,
            timeout_seconds=self.timeout_seconds,
            retry=RetryPolicy(
                max_attempts=self.max_attempts, total_budget_seconds=self.retry_budget_seconds
            ),
            max_requests_per_second=self.max_requests_per_second or None,  # 0: no cap
            max_connections=self.max_connections,
            batch_size=self.batch_size,
        )


def env_var_if_set(name: str) -> dg.EnvVar | None:
    """An EnvVar only for variables that are set, so an unused credential may stay unset (and
    a URL may fall back to a default); the UI shows the name, never the value."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def pendo_resource_from_env(
    *,
    region: str | None = None,
    base_url: str | None = None,
    integration_key_env: str = "PENDO_INTEGRATION_KEY",
    track_event_secret_env: str = "PENDO_TRACK_EVENT_SECRET",
) -> PendoResource:
    """The resource as the README's environment variables describe it; credentials are read
    from the named variables at run time (EnvVar), so the UI shows names, never values.
    `region` and `base_url` replace PENDO_REGION and PENDO_BASE_URL when given."""
    return PendoResource(
        region=region or os.environ.get("PENDO_REGION") or "us",
        integration_key=env_var_if_set(integration_key_env),
        track_event_secret=env_var_if_set(track_event_secret_env),
        base_url=base_url or os.environ.get("PENDO_BASE_URL") or None,
        max_requests_per_second=float(os.environ.get("PENDO_MAX_REQUESTS_PER_SECOND") or 100),
        max_in_flight=int(os.environ.get("PENDO_MAX_IN_FLIGHT") or DEFAULT_MAX_IN_FLIGHT),
    )
