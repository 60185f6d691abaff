"""The code location Dagster loads (`workspace.yaml`, `dagster dev`, `dagster ... -m`)."""

import dagster as dg

from pendo_assets.defs.resources import pendo_resource_from_env

defs = dg.Definitions(resources={"pendo": pendo_resource_from_env()})
