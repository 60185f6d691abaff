"""Database URLs as they may be shown: in logs, errors and the Dagster UI, never a password."""

from __future__ import annotations

import sqlalchemy as sa


def masked(url: str | sa.URL) -> str:
    """The URL with any password hidden; nothing of it when it cannot be parsed."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def error_reason(error: BaseException, url: sa.URL, limit: int | None = None) -> str:
    """A database error in a few words: the driver's own first line (SQLAlchemy's wrapper adds
    the statement and a link), at most ``limit`` characters, with the password of ``url``
    masked should it ever appear."""
    cause = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    reason = " ".join(lines[0].split()) if lines else type(cause).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason if limit is None else reason[:limit]
