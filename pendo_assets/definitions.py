"""The code location Dagster loads (`workspace.yaml`, `dagster dev`, `dagster ... -m`).

Everything comes from the environment variables the README lists; with none set, it is the
demo: the packaged syncs file over the embedded SQLite warehouse and a local state database.
"""

import os

import dagster as dg

from pendo_assets.defs.database_resources import SyncStateResource, WarehouseResource
from pendo_assets.defs.environment import state_url, syncs_file, warehouse_url
from pendo_assets.defs.factory import build_pendo_definitions
from pendo_assets.defs.resources import pendo_resource_from_env
from pendo_assets.sync.source.warehouse import DEFAULT_CHUNK_ROWS
from pendo_assets.sync.spec import load_syncs_file


def _url(variable: str, default: str) -> str:
    # A URL from the environment may hold a password: pass it as an EnvVar so the UI shows
    # only the variable's name.
    return dg.EnvVar(variable) if os.environ.get(variable) else default


defs = build_pendo_definitions(
    load_syncs_file(syncs_file()),
    resources={
        "pendo": pendo_resource_from_env(),
        "warehouse": WarehouseResource(
            url=_url("PENDO_WAREHOUSE_URL", warehouse_url()),
            chunk_rows=int(os.environ.get("PENDO_CHUNK_ROWS") or DEFAULT_CHUNK_ROWS),
        ),
        "sync_state": SyncStateResource(
            url=_url("PENDO_STATE_URL", state_url()),
            lease_ttl_seconds=float(os.environ.get("PENDO_LEASE_TTL_SECONDS") or 120),
            lease_wait_seconds=float(os.environ.get("PENDO_LEASE_WAIT_SECONDS") or 900),
        ),
    },
)
