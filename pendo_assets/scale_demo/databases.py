"""Fresh PostgreSQL databases for one demo run, dropped afterwards whatever happened."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

#: Where the demo creates its databases unless told otherwise (the local server, trust auth).
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def with_driver(url: str | sa.URL, driver: str) -> sa.URL:
    """The same server and database through another driver: dagster-postgres needs psycopg2
    (`postgresql+psycopg2://`), the sync state and warehouse use psycopg 3
    (`postgresql+psycopg://`)."""
    return sa.make_url(url).set(drivername=driver)


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str, record: Path | None = None) -> Iterator[sa.URL]:
    """A new, uniquely named database on the server of `admin_url`; its URL (psycopg 3).

    Dropped on the way out with FORCE, so connections a killed process left open do not keep
    it alive. Its name is appended to `record`, if given, for whoever must clean up after a
    process that could not (`drop_database`).
    """
    admin_url_obj = with_driver(admin_url, "postgresql+psycopg")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url_obj, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        if record is not None:
            with record.open("a") as names:
                names.write(f"{name}\n")
        try:
            yield admin_url_obj.set(database=name)
        finally:
            drop_database(admin_url, name)
    finally:
        admin.dispose()


def drop_database(admin_url: str, name: str) -> None:
    """Drop `name` (if it is still there), closing whatever connections it has."""
    admin_url_obj = with_driver(admin_url, "postgresql+psycopg")
    admin = sa.create_engine(admin_url_obj, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
