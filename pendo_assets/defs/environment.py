"""Where the code location finds its syncs file and databases, from the README's variables."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGED_SYNCS_FILE = Path(__file__).resolve().parents[1] / "demo" / "demo_syncs.yaml"


def dagster_home() -> Path:
    """$DAGSTER_HOME, or `.dagster_home` in the working directory when it is unset."""
    return Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()


def demo_warehouse_path() -> Path:
    return dagster_home() / "demo_warehouse.db"


def syncs_file() -> Path:
    return Path(os.environ.get("PENDO_SYNCS_FILE") or PACKAGED_SYNCS_FILE)


def local_state_url() -> str:
    """The state database when none is configured: SQLite in $DAGSTER_HOME (one host)."""
    return f"sqlite:///{dagster_home() / 'pendo_sync_state.db'}"


def state_url() -> str:
    return os.environ.get("PENDO_STATE_URL") or local_state_url()
