"""Dagster components: declare Pendo syncs in a `dg` project's `defs.yaml`."""

from .pendo_sync.component import PendoSyncAsset, PendoSyncComponent

__all__ = ["PendoSyncAsset", "PendoSyncComponent"]
