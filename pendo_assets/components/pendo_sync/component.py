"""`PendoSyncComponent`: the syncs of a `dg` project, declared in its `defs.yaml`.

It builds exactly what the env-var code location builds (assets, checks, jobs, schedules,
sensors, resources) through the same `build_pendo_definitions`; only where the syncs and the
names of the environment variables come from differs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import dagster as dg
import yaml
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver
from pydantic import Field

from pendo_assets.client.regions import normalize_region
from pendo_assets.defs.env_resources import resources_from_env
from pendo_assets.defs.executors import executor_from_env
from pendo_assets.defs.factory import build_pendo_definitions
from pendo_assets.defs.sync_assets import Role
from pendo_assets.sync.spec import SyncConfigError, SyncsFile, SyncSpec, parse_syncs

from .scaffolder import PendoSyncScaffolder


@dataclass(frozen=True)
class PendoSyncAsset:
    """What a translation sees: the sync (`sync`) and which of its two assets (`asset`)."""

    sync: SyncSpec
    asset: Role


def _template_vars(data: PendoSyncAsset) -> dict[str, Any]:
    return {"sync": data.sync, "asset": data.asset}


class MissingEnvironmentVariable(dg.DagsterInvalidDefinitionError):
    """A variable the syncs need is not set; the message names it, never a value."""


@dg.scaffold_with(PendoSyncScaffolder)
class PendoSyncComponent(dg.Component, dg.Model, dg.Resolvable):
    """Push warehouse partitions to Pendo: per sync, `warehouse/<name>` and `pendo/<name>`
    (daily partitions), their checks, a job, a daily schedule, a warehouse-change sensor and a
    sensor that retries failed rows."""

    region: str = Field(
        default="us", description="Pendo region: us, us1, eu, jp or au (a key works only there)."
    )
    base_url: str | None = Field(
        default=None,
        description="Replaces the region's host on every call (proxy, local sandbox); empty or "
        "absent: the region's host.",
    )
    integration_key_env: str = Field(
        default="PENDO_INTEGRATION_KEY",
        description="Name of the variable holding the integration key (metadata syncs); read "
        "at run time, never shown.",
    )
    track_event_secret_env: str = Field(
        default="PENDO_TRACK_EVENT_SECRET",
        description="Name of the variable holding the Track Event secret (track event syncs).",
    )
    warehouse_url_env: str = Field(
        default="PENDO_WAREHOUSE_URL",
        description="Name of the variable holding the warehouse's SQLAlchemy URL.",
    )
    state_url_env: str = Field(
        default="PENDO_STATE_URL",
        description="Name of the variable holding the sync state database's SQLAlchemy URL; "
        "unset: SQLite in $DAGSTER_HOME (one host only).",
    )
    start_date: str | None = Field(
        default=None,
        description="First day partition (YYYY-MM-DD); replaces the syncs file's start_date.",
    )
    syncs_file: str | None = Field(
        default=None,
        description="A syncs file (the README's schema), relative to this defs.yaml.",
    )
    syncs: list[dict[str, Any]] | None = Field(
        default=None, description="Syncs declared inline, in the syncs file's schema."
    )
    translation: (
        Annotated[
            TranslationFn[PendoSyncAsset],
            TranslationFnResolver(template_vars_for_translation_fn=_template_vars),
        ]
        | None
    ) = Field(
        default=None,
        description="Asset attributes for both assets of every sync, with template variables "
        "`sync` (name, object_type, source, ...) and `asset` (warehouse or pendo).",
    )

    def get_asset_spec(self, sync: SyncSpec, asset: Role, default: dg.AssetSpec) -> dg.AssetSpec:
        """The spec one of a sync's assets is built from: the default, translated. Override in
        a subclass to compute attributes in Python."""
        if self.translation is None:
            return default
        return self.translation(default, PendoSyncAsset(sync, asset))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        syncs = self.load_syncs(context.path)
        self._require_variables(syncs.syncs)
        return build_pendo_definitions(
            syncs,
            resources=resources_from_env(
                warehouse_url_default="",  # never used: the variable is required above
                region=normalize_region(self.region),
                base_url=self.base_url or None,
                integration_key_env=self.integration_key_env,
                track_event_secret_env=self.track_event_secret_env,
                warehouse_url_env=self.warehouse_url_env,
                state_url_env=self.state_url_env,
            ),
            executor=executor_from_env(),
            translate=self.get_asset_spec,
        )

    def load_syncs(self, folder: Path) -> SyncsFile:
        """The syncs of `syncs_file` (relative to `folder`) and of `syncs:`, checked as one
        syncs file; every error names where the sync came from."""
        origin = str(folder / "defs.yaml")
        data: dict[str, Any] = {"syncs": []}
        if self.syncs_file:
            path = folder / self.syncs_file
            origin = str(path)
            try:
                loaded = yaml.safe_load(path.read_text())
            except OSError as error:
                raise SyncConfigError(
                    f"{path}: cannot read the syncs file: {error.strerror}"
                ) from None
            if not isinstance(loaded, dict):
                raise SyncConfigError(f"{path}: expected a mapping with `start_date` and `syncs`")
            data = dict(loaded)
        data["syncs"] = [*(data.get("syncs") or []), *(self.syncs or [])]
        if self.start_date:
            data["start_date"] = self.start_date
        if not data["syncs"]:
            raise SyncConfigError(f"{origin}: no syncs: give `syncs_file` or `syncs`")
        return parse_syncs(data, origin=origin)

    def _require_variables(self, syncs: Sequence[SyncSpec]) -> None:
        """Fail at load, naming the variable, when one the syncs need is unset."""
        needed = {self.warehouse_url_env: "every sync reads the warehouse"}
        for sync in syncs:
            attribute = (
                self.integration_key_env if sync.is_metadata else self.track_event_secret_env
            )
            needed.setdefault(attribute, f"sync {sync.name!r} ({sync.object_type}) needs it")
        missing = [(name, why) for name, why in needed.items() if not os.environ.get(name)]
        if missing:
            listed = "; ".join(f"{name} ({why})" for name, why in missing)
            raise MissingEnvironmentVariable(
                f"PendoSyncComponent: environment variable(s) not set: {listed}. Set them "
                "(a .env file in the project works with `dg`), and list them under "
                "`requirements: env:` in defs.yaml."
            )
