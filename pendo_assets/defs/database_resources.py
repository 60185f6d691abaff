"""The two databases a sync touches: the warehouse it reads and the state it writes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dagster as dg
import sqlalchemy as sa
from pydantic import Field, PrivateAttr

from pendo_assets.budget import HostBudget, PostgresBudget, budget_for_state
from pendo_assets.database_urls import masked
from pendo_assets.sync.record.failure_store import FailureStore
from pendo_assets.sync.record.partition_lease import LeaseSettings
from pendo_assets.sync.record.state_store import StateStore, state_engine
from pendo_assets.sync.source.warehouse import (
    DEFAULT_CHUNK_ROWS,
    PartitionStream,
    WarehouseError,
    stream_partition,
)
from pendo_assets.sync.spec import SyncSpec


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse, read-only: sync assets only ever SELECT from it."""

    url: str = Field(repr=False, description="SQLAlchemy URL of the warehouse.")
    chunk_rows: int = Field(
        default=DEFAULT_CHUNK_ROWS,
        gt=0,
        description="Rows read, prepared and sent at a time: a sync's memory is bounded by a "
        "few chunks, whatever the size of the partition.",
    )
    _engine: sa.Engine | None = PrivateAttr(default=None)

    @property
    def display_url(self) -> str:
        return masked(self.url)

    def get_engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = sa.create_engine(self.url, pool_pre_ping=True)
        return self._engine

    def stream_partition(
        self,
        spec: SyncSpec,
        partition_key: str,
        columns: Sequence[str],
        *,
        on_count: Callable[[int], None] | None = None,
    ) -> PartitionStream:
        """The sync's rows of one partition, chunk by chunk; metadata rows grouped by id, so
        the last row of an id in the partition wins whatever the chunk size. ``on_count``
        hears the rows of the whole source no partition reads, after the last chunk.
        Each chunk holds ``columns``: a push reads the mapped ones, a count the ids alone.

        A warehouse that cannot be read raises `WarehouseError` as it is read; `unreadable`
        words it as the step's failure.
        """
        return stream_partition(
            self.get_engine(),
            spec.source,
            columns,
            partition_key,
            chunk_rows=self.chunk_rows,
            group_by=spec.id_column if spec.is_metadata else None,
            on_count=on_count,
        )

    def unreadable(self, spec: SyncSpec, error: WarehouseError) -> dg.Failure:
        return dg.Failure(
            description=f"sync {spec.name!r}: cannot read the warehouse "
            f"({self.display_url}): {error}",
            allow_retries=False,
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()


class SyncStateResource(dg.ConfigurableResource):
    """Where sync state and failed rows live (`pendo_sync_failures`)."""

    url: str = Field(repr=False, description="SQLAlchemy URL of the sync state database.")
    lease_ttl_seconds: float = Field(
        default=120.0,
        description="How long a partition's lease outlives its last renewal: the wait before "
        "a run may take over the partition of a run that was killed.",
    )
    lease_wait_seconds: float = Field(
        default=900.0,
        description="How long a run waits for another run of the same partition to finish "
        "before it fails (and its step retries).",
    )
    _store: FailureStore | None = PrivateAttr(default=None)
    _state: StateStore | None = PrivateAttr(default=None)
    _engine: sa.Engine | None = PrivateAttr(default=None)
    _budget: HostBudget | PostgresBudget | None = PrivateAttr(default=None)

    @property
    def display_url(self) -> str:
        return masked(self.url)

    def get_engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = state_engine(self.url)
        return self._engine

    def budget(self) -> HostBudget | PostgresBudget:
        """Pendo's per-destination budget, shared with every run that uses this state: in
        PostgreSQL for a PostgreSQL state database (all hosts), else host-wide."""
        if self._budget is None:
            self._budget = budget_for_state(self.url)
        return self._budget

    def failure_store(self) -> FailureStore:
        if self._store is None:
            self._store = FailureStore(self.get_engine())
        return self._store

    def lease_settings(self) -> LeaseSettings:
        return LeaseSettings(
            ttl_seconds=self.lease_ttl_seconds, wait_seconds=self.lease_wait_seconds
        )

    def state_store(self) -> StateStore:
        if self._state is None:
            self._state = StateStore(self.get_engine())
        return self._state

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self._budget is not None:
            self._budget.close()
