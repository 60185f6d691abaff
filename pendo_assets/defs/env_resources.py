"""The three resources every sync needs, from environment variables named by the caller.

The code location (`pendo_assets.definitions`) uses the README's variable names; a
`PendoSyncComponent` names its own. URLs and credentials are bound as `dg.EnvVar`, so they are
read at run time and the UI shows only the variable's name.
"""

from __future__ import annotations

import os

import dagster as dg

from pendo_assets.sync.source.warehouse import DEFAULT_CHUNK_ROWS

from .database_resources import SyncStateResource, WarehouseResource
from .environment import local_state_url
from .resources import env_var_if_set, pendo_resource_from_env


def resources_from_env(
    *,
    warehouse_url_default: str,
    region: str | None = None,
    base_url: str | None = None,
    integration_key_env: str = "PENDO_INTEGRATION_KEY",
    track_event_secret_env: str = "PENDO_TRACK_EVENT_SECRET",
    warehouse_url_env: str = "PENDO_WAREHOUSE_URL",
    state_url_env: str = "PENDO_STATE_URL",
) -> dict[str, dg.ConfigurableResource]:
    """`pendo`, `warehouse` and `sync_state`; the tuning variables (chunk rows, leases, cap,
    requests in flight) are the README's in every case."""
    return {
        "pendo": pendo_resource_from_env(
            region=region,
            base_url=base_url,
            integration_key_env=integration_key_env,
            track_event_secret_env=track_event_secret_env,
        ),
        "warehouse": WarehouseResource(
            url=env_var_if_set(warehouse_url_env) or warehouse_url_default,
            chunk_rows=int(os.environ.get("PENDO_CHUNK_ROWS") or DEFAULT_CHUNK_ROWS),
        ),
        "sync_state": SyncStateResource(
            url=env_var_if_set(state_url_env) or local_state_url(),
            lease_ttl_seconds=float(os.environ.get("PENDO_LEASE_TTL_SECONDS") or 120),
            lease_wait_seconds=float(os.environ.get("PENDO_LEASE_WAIT_SECONDS") or 900),
        ),
    }
