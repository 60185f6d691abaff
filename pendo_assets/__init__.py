"""pendo-assets: Dagster-native reverse ETL from your warehouse into Pendo."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["PendoSyncComponent"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so `pendo_assets.client` and `pendo_assets.sync` stay free of
    # Dagster; `type: pendo_assets.PendoSyncComponent` and `dg list components` find it here.
    if name == "PendoSyncComponent":
        from pendo_assets.components import PendoSyncComponent

        return PendoSyncComponent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
