"""Database URLs as they may be shown: in logs, errors and the Dagster UI, never a password."""

from __future__ import annotations

import sqlalchemy as sa


def masked(url: str | sa.URL) -> str:
    """The URL with any password hidden; nothing of it when it cannot be parsed."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"
