"""A new `dg` project gets working Pendo syncs: `dg scaffold defs`, its own syncs file,
`dg check defs`, `dg list defs`, then `dg launch` of one day, records landing in the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from pendo_assets.sandbox import SandboxServer

DG = str(Path(sys.executable).with_name("dg"))
DAY: date = datetime.now(UTC).date() - timedelta(days=2)  # a partition that has ended
SYNCS = {
    "start_date": (DAY - timedelta(days=5)).isoformat(),
    "syncs": [
        {
            "name": "visitors",
            "object_type": "visitor_metadata",
            "source": {"table": "pendo_visitors", "partition_column": "updated_at"},
            "mapping": {"id": "visitorId", "plan": "plan"},
        },
        {
            "name": "feature_events",
            "object_type": "track_events",
            "source": {"table": "feature_events", "partition_column": "occurred_at"},
            "mapping": {"user_id": "visitorId", "event_name": "event", "occurred_at": "timestamp"},
        },
    ],
}


@dataclass
class DgProject:
    root: Path
    env: dict[str, str]

    def dg(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DG, *args],
            cwd=self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    @property
    def defs_folder(self) -> Path:
        return self.root / "src" / "acme_project" / "defs" / "pendo"


def _warehouse(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    stamp = datetime.combine(DAY, time(9))
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE pendo_visitors (id TEXT, plan TEXT, updated_at TIMESTAMP)"
        )
        connection.exec_driver_sql(
            "CREATE TABLE feature_events (user_id TEXT, event_name TEXT, occurred_at TIMESTAMP)"
        )
        connection.execute(
            sa.text("INSERT INTO pendo_visitors VALUES (:id, :plan, :at)"),
            [{"id": f"v-{i}", "plan": "pro", "at": stamp} for i in range(5)]
            + [{"id": "v-late", "plan": "pro", "at": stamp + timedelta(days=1)}],
        )
        connection.execute(
            sa.text("INSERT INTO feature_events VALUES (:user, 'Exported', :at)"),
            [{"user": f"v-{i}", "at": stamp + timedelta(minutes=i)} for i in range(3)],
        )
    engine.dispose()
    return url


@pytest.fixture
def project(
    tmp_path: Path, sandbox: SandboxServer, integration_key: str, track_event_secret: str
) -> Iterator[DgProject]:
    """A dg project as `create-dagster project` lays it out, pendo-assets installed beside it
    (this venv), and the variables its defs.yaml names pointing at the sandbox."""
    root = tmp_path / "acme-project"
    package = root / "src" / "acme_project"
    (package / "defs").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (package / "definitions.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path

            import dagster as dg


            @dg.definitions
            def defs() -> dg.Definitions:
                return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
            """
        )
    )
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [project]
            name = "acme-project"
            version = "0.1.0"
            requires-python = ">=3.11"
            dependencies = ["pendo-assets"]

            [tool.dg]
            directory_type = "project"

            [tool.dg.project]
            root_module = "acme_project"
            """
        )
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(root / "src"),
        "DAGSTER_HOME": str(home),
        "PENDO_INTEGRATION_KEY": integration_key,
        "PENDO_TRACK_EVENT_SECRET": track_event_secret,
        "PENDO_WAREHOUSE_URL": _warehouse(tmp_path / "warehouse.db"),
        "PENDO_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "PENDO_BASE_URL": sandbox.url,
    }
    yield DgProject(root, env)


def _ok(completed: subprocess.CompletedProcess[str]) -> str:
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout


def test_dg_lists_the_component_through_its_registry_entry_point(project: DgProject) -> None:
    listed = json.loads(_ok(project.dg("list", "components", "--json")))
    keys = {item["key"] for item in listed["items"]}
    assert "pendo_assets.PendoSyncComponent" in keys


def test_a_scaffolded_project_syncs_a_day_into_pendo(
    project: DgProject, sandbox: SandboxServer
) -> None:
    _ok(project.dg("scaffold", "defs", "pendo_assets.PendoSyncComponent", "pendo"))
    defs_yaml = yaml.safe_load((project.defs_folder / "defs.yaml").read_text())
    assert defs_yaml["type"] == "pendo_assets.PendoSyncComponent"
    assert defs_yaml["attributes"]["syncs_file"] == "syncs.yaml"
    assert defs_yaml["requirements"]["env"] == [
        "PENDO_INTEGRATION_KEY",
        "PENDO_TRACK_EVENT_SECRET",
        "PENDO_WAREHOUSE_URL",
    ]
    assert (project.defs_folder / "syncs.yaml").exists()  # an example, replaced by ours:
    (project.defs_folder / "syncs.yaml").write_text(yaml.safe_dump(SYNCS))

    _ok(project.dg("check", "defs"))
    listed = json.loads(_ok(project.dg("list", "defs", "--json")))
    keys = {asset["asset_key"] for asset in listed["assets"]}
    assert keys == {
        "warehouse/visitors",
        "pendo/visitors",
        "warehouse/feature_events",
        "pendo/feature_events",
    }
    groups = {asset["asset_key"]: asset["group_name"] for asset in listed["assets"]}
    assert groups["pendo/feature_events"] == "pendo_track_events"  # the scaffold's translation

    for sync in ("visitors", "feature_events"):
        _ok(
            project.dg(
                "launch",
                "--assets",
                f"warehouse/{sync},pendo/{sync}",
                "--partition",
                DAY.isoformat(),
            )
        )
    state: dict[str, Any] = sandbox.state(requests=False)
    assert sorted(state["metadata"]["visitor"]) == [f"v-{i}" for i in range(5)]
    assert sorted(e["visitorId"] for e in state["events"]) == ["v-0", "v-1", "v-2"]


def test_check_defs_names_a_missing_variable_and_prints_no_value(
    project: DgProject, integration_key: str
) -> None:
    _ok(project.dg("scaffold", "defs", "pendo_assets.PendoSyncComponent", "pendo"))
    (project.defs_folder / "syncs.yaml").write_text(yaml.safe_dump(SYNCS))
    env = {k: v for k, v in project.env.items() if k != "PENDO_TRACK_EVENT_SECRET"}

    completed = project.dg("check", "defs", env=env)

    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert "PENDO_TRACK_EVENT_SECRET (sync 'feature_events' (track_events) needs it)" in output
    assert integration_key not in output
