"""Fresh, empty state databases for tests that need several: SQLite files or PostgreSQL schemas.

Each engine handed out stands for one process: its own pool, so threads using different
engines race the way separate runs do.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

EngineFactory = Callable[[], sa.Engine]


class StateDatabases:
    """Hands out new empty databases of one backend and removes them all at the end."""

    def __init__(self, backend: str, tmp_path: Path, postgres_url: str | None = None) -> None:
        self.backend = backend
        self._tmp_path = tmp_path
        self._postgres_url = postgres_url
        self._schemas: list[str] = []
        self._engines: list[sa.Engine] = []

    def new(self) -> EngineFactory:
        """A new empty database; each call of the result is another engine on it."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            url = f"sqlite:///{self._tmp_path / f'{name}.db'}"
            return lambda: self._engine(url)
        assert self._postgres_url is not None
        with sa.create_engine(self._postgres_url, poolclass=sa.NullPool).begin() as connection:
            connection.execute(sa.schema.CreateSchema(name))
        self._schemas.append(name)
        options = {"options": f"-c search_path={name}"}
        return lambda: self._engine(self._postgres_url, connect_args=options)

    def _engine(self, url: str | None, **kwargs: object) -> sa.Engine:
        engine = sa.create_engine(url, poolclass=sa.NullPool, **kwargs)  # type: ignore[arg-type]
        self._engines.append(engine)
        return engine

    def close(self) -> None:
        for engine in self._engines:
            engine.dispose()
        if self._schemas:
            admin = sa.create_engine(self._postgres_url, poolclass=sa.NullPool)  # type: ignore[arg-type]
            with admin.begin() as connection:
                for name in self._schemas:
                    connection.execute(sa.schema.DropSchema(name, cascade=True, if_exists=True))
            admin.dispose()


BACKENDS = pytest.mark.parametrize(
    "databases",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


def open_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateDatabases]:
    """The body of a `databases` fixture parametrised with "sqlite" or "postgres"."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    databases = StateDatabases(request.param, tmp_path, url)
    try:
        yield databases
    finally:
        databases.close()


def state_engine_for(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    """An engine on the test's state database, by `request.param`: the SQLite file
    `tmp_path/state.db`, or the test's own PostgreSQL schema; each call is another engine
    (another "process") on the same database."""
    if request.param == "sqlite":
        from pendo_assets.sync.record.state_store import state_engine

        return state_engine(f"sqlite:///{tmp_path / 'state.db'}")
    schema = request.getfixturevalue("pg_schema")
    return sa.create_engine(
        request.getfixturevalue("postgres_url"),
        connect_args={"options": f"-c search_path={schema}"},
    )


def race(*calls: Callable[[], Any]) -> list[BaseException]:
    """Run the calls in threads released at the same moment; the errors they raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as error:  # every error is a finding
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
