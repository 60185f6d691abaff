"""`dg scaffold defs pendo_assets.PendoSyncComponent <folder>`: a working `defs.yaml`, an
example syncs file beside it, and the variables the syncs need under `requirements.env`."""

from __future__ import annotations

from importlib.resources import files

import dagster as dg

TEMPLATES = files("pendo_assets.components.pendo_sync") / "templates"


class PendoSyncScaffolder(dg.Scaffolder):
    """Writes the two files from templates, so they keep their comments."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        target = request.target_path
        target.mkdir(parents=True, exist_ok=True)
        defs_yaml = (TEMPLATES / "defs.yaml").read_text()
        (target / "defs.yaml").write_text(defs_yaml.replace("TYPE_NAME", request.type_name))
        syncs = target / "syncs.yaml"
        if not syncs.exists():  # a user's own syncs file is never overwritten
            syncs.write_text((TEMPLATES / "syncs.yaml").read_text())
