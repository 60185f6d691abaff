"""Bringing a state database written by an earlier release up to this release's layout.

Earlier releases kept state in one table, `pendo_sync_state`, one row per record repeating
destination and sync name (and, before destinations, without them). Its rows are copied into
the compact tables, the old table is dropped and `pendo_sync_state` comes back as a view over
the new ones, all in one transaction: a process killed half way leaves the old table as it
was. Safe when several processes start at once: each attempt looks again inside its
transaction, and the loser finds the work done.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa

from pendo_assets.sync.record.state_tables import (
    STATE_VIEW,
    record_table,
    scope_table,
    state_view_sql,
    write_table,
)
from pendo_assets.sync.record.table_setup import ATTEMPTS, ensure_created

logger = logging.getLogger("pendo_assets.sync")

_PAUSE_SECONDS = 0.2


def upgrade_state(engine: sa.Engine, destination: str) -> None:
    """Copy an old `pendo_sync_state` table into the compact tables, then make the view.

    Rows of a table from before destinations were written for the Pendo this deployment
    pointed at; they are assigned to `destination`, the first destination that opens the
    state after the upgrade.
    """
    _migrate_old_table(engine, destination)
    ensure_created(lambda: _has_view(engine), lambda: _create_view(engine))


def _migrate_old_table(engine: sa.Engine, destination: str) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        if not _has_old_table(engine):
            return
        try:
            with engine.execution_options(immediate=True).begin() as connection:
                if engine.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"LOCK TABLE {STATE_VIEW} IN ACCESS EXCLUSIVE MODE")
                if not _has_old_table(connection):
                    return
                copied = _copy_old_rows(connection, destination)
                connection.exec_driver_sql(f"DROP TABLE {STATE_VIEW}")
                connection.exec_driver_sql(state_view_sql(engine.dialect.name))
        except sa.exc.DBAPIError:  # another process holds the lock or just did the work
            if attempt == ATTEMPTS:
                raise
            time.sleep(_PAUSE_SECONDS * attempt)
            continue
        logger.warning(
            "moved %d records of sync state from the table %s of an earlier release into %s",
            copied,
            STATE_VIEW,
            record_table.name,
        )
        return


def _copy_old_rows(connection: sa.Connection, destination: str) -> int:
    """Scopes, one write per old run and scope (its latest time), then the records."""
    dialect = connection.dialect.name
    columns = {c["name"] for c in sa.inspect(connection).get_columns(STATE_VIEW)}
    # A table from before destinations: its rows belong to `destination`.
    since_destinations = "destination" in columns
    plain = "destination" if since_destinations else ":destination"
    aliased = "o.destination" if since_destinations else ":destination"
    old = STATE_VIEW
    scopes, writes, records = scope_table.name, write_table.name, record_table.name
    if dialect == "sqlite":
        driver = connection.connection.driver_connection
        driver.create_function("pendo_unhex", 1, _unhex, deterministic=True)  # type: ignore[union-attr]
        unhex = "pendo_unhex(o.payload_hash)"
    else:
        unhex = (
            "CASE WHEN o.payload_hash ~ '^([0-9a-fA-F]{2})+$' THEN decode(o.payload_hash, 'hex') "
            "ELSE convert_to(o.payload_hash, 'UTF8') END"
        )
    joined = (
        f"FROM {old} o JOIN {scopes} s ON s.destination = {aliased} AND s.sync_name = o.sync_name"
    )
    statements = [
        f"INSERT INTO {scopes} (destination, sync_name) SELECT DISTINCT {plain}, sync_name "
        f"FROM {old} WHERE true ON CONFLICT (destination, sync_name) DO NOTHING",
        f"INSERT INTO {writes} (scope_id, run_id, accepted_at) "
        f"SELECT s.scope_id, o.run_id, max(o.accepted_at) {joined} GROUP BY s.scope_id, o.run_id",
        f"INSERT INTO {records} (scope_id, record_key, payload_hash, write_id, payload) "
        f"SELECT s.scope_id, o.record_key, {unhex}, w.write_id, o.payload {joined} "
        f"JOIN {writes} w ON w.scope_id = s.scope_id AND w.run_id = o.run_id "
        "WHERE true ON CONFLICT (scope_id, record_key) DO NOTHING",
    ]
    copied = 0
    for statement in statements:
        result = connection.execute(sa.text(statement), {"destination": destination})
        copied = result.rowcount
    return copied


def _unhex(text: str | None) -> bytes | None:
    """A stored hex hash as bytes; anything else as its own bytes (it then matches nothing,
    and its record is sent once more)."""
    if text is None:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return text.encode("utf-8", "surrogatepass")


def _has_old_table(bind: sa.Engine | sa.Connection) -> bool:
    return STATE_VIEW in sa.inspect(bind).get_table_names()


def _has_view(engine: sa.Engine) -> bool:
    return STATE_VIEW in sa.inspect(engine).get_view_names()


def _create_view(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        if not _has_old_table(connection):  # else the migration above failed: it raised
            connection.exec_driver_sql(state_view_sql(engine.dialect.name))
