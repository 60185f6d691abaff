"""The tables of sync state, and the in-place migration of state written before destinations.

`pendo_sync_state` holds, per destination, sync and record key, what Pendo last accepted;
`pendo_sync_leases` holds which run is syncing a partition to a destination right now.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa

from pendo_assets.sync.record.failure_store import metadata as shared_metadata

logger = logging.getLogger("pendo_assets.sync")

STATE_TABLE = "pendo_sync_state"
SUPPORTED_DIALECTS = ("sqlite", "postgresql")
DESTINATION_LENGTH = 300
RECORD_KEY_LENGTH = 512

state_table = sa.Table(
    STATE_TABLE,
    shared_metadata,
    # Where the record was accepted: base URL + one-way fingerprint of the credential.
    sa.Column("destination", sa.String(DESTINATION_LENGTH), primary_key=True),
    sa.Column("sync_name", sa.String(200), primary_key=True),
    sa.Column("record_key", sa.String(RECORD_KEY_LENGTH), primary_key=True),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
)

lease_table = sa.Table(
    "pendo_sync_leases",
    shared_metadata,
    sa.Column("destination", sa.String(DESTINATION_LENGTH), primary_key=True),
    sa.Column("sync_name", sa.String(200), primary_key=True),
    sa.Column("partition_key", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),  # the run id, for messages
    sa.Column("token", sa.String(64), nullable=False),  # unique per acquisition: the fence
    sa.Column("acquired_at", sa.Float, nullable=False),  # epoch seconds, database clock
    sa.Column("expires_at", sa.Float, nullable=False),
)

_MIGRATION_ATTEMPTS = 5


def check_dialect(engine: sa.Engine) -> None:
    """Refuse an unsupported state database before anything is sent, not after."""
    if engine.dialect.name not in SUPPORTED_DIALECTS:
        raise StateDatabaseError(
            f"the sync state database must be SQLite or PostgreSQL, not {engine.dialect.name}"
        )


class StateDatabaseError(RuntimeError):
    """The state database cannot hold sync state (wrong dialect, not writable)."""


def migrate_state_table(engine: sa.Engine, destination: str) -> bool:
    """Add `destination` to a `pendo_sync_state` written before it existed; True if migrated.

    Rows already there were written for the Pendo this deployment pointed at; they are
    assigned to `destination`, the first destination that opens the state after the upgrade.
    Safe when several processes try at once: each attempt re-checks inside its transaction.
    """
    for attempt in range(_MIGRATION_ATTEMPTS):
        if not _needs_migration(engine):
            return False
        try:
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"LOCK TABLE {STATE_TABLE} IN ACCESS EXCLUSIVE MODE")
                if not _needs_migration(connection):
                    return False
                if engine.dialect.name == "postgresql":
                    _migrate_postgresql(connection, destination)
                else:
                    _migrate_sqlite(connection, destination)
        except sa.exc.OperationalError:  # another process holds or just did the migration
            if attempt == _MIGRATION_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
            continue
        logger.warning(
            "migrated table %s: existing rows now belong to destination %s",
            STATE_TABLE,
            destination,
        )
        return True
    return False


def _needs_migration(bind: sa.Engine | sa.Connection) -> bool:
    inspector = sa.inspect(bind)
    if not inspector.has_table(STATE_TABLE):
        return False
    return "destination" not in {c["name"] for c in inspector.get_columns(STATE_TABLE)}


def _migrate_postgresql(connection: sa.Connection, destination: str) -> None:
    connection.execute(
        sa.text(
            f"ALTER TABLE {STATE_TABLE} ADD COLUMN destination "
            f"VARCHAR({DESTINATION_LENGTH}) NOT NULL DEFAULT ''"
        )
    )
    connection.execute(sa.text(f"UPDATE {STATE_TABLE} SET destination = :d"), {"d": destination})
    connection.execute(sa.text(f"ALTER TABLE {STATE_TABLE} ALTER COLUMN destination DROP DEFAULT"))
    primary_key = sa.inspect(connection).get_pk_constraint(STATE_TABLE)["name"]
    connection.execute(sa.text(f'ALTER TABLE {STATE_TABLE} DROP CONSTRAINT "{primary_key}"'))
    connection.execute(
        sa.text(f"ALTER TABLE {STATE_TABLE} ADD PRIMARY KEY (destination, sync_name, record_key)")
    )


def _migrate_sqlite(connection: sa.Connection, destination: str) -> None:
    """SQLite cannot change a primary key: rebuild the table under the same name."""
    old = f"{STATE_TABLE}_before_destinations"
    connection.exec_driver_sql(f"ALTER TABLE {STATE_TABLE} RENAME TO {old}")
    state_table.create(connection)
    connection.execute(
        sa.text(
            f"INSERT INTO {STATE_TABLE} (destination, sync_name, record_key, payload_hash, "
            "payload, run_id, accepted_at) SELECT :d, sync_name, record_key, payload_hash, "
            f"payload, run_id, accepted_at FROM {old}"
        ),
        {"d": destination},
    )
    connection.exec_driver_sql(f"DROP TABLE {old}")
