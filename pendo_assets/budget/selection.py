"""Where a destination's budget lives, from the state database's URL."""

from __future__ import annotations

import os

import sqlalchemy as sa

from .host_budget import HostBudget
from .postgres_budget import PostgresBudget


def budget_for_state(state_url: sa.URL | str) -> HostBudget | PostgresBudget:
    """PostgreSQL state: the budget in PostgreSQL (every host); otherwise host-wide."""
    url = sa.make_url(state_url)
    if url.get_backend_name() == "postgresql":
        return PostgresBudget(url)
    return HostBudget(os.environ.get("PENDO_BUDGET_DIR"))
