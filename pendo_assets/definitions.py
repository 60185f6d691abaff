"""The code location Dagster loads (`workspace.yaml`, `dagster dev`, `dagster ... -m`).

Everything comes from the environment variables the README lists; with none set, it is the
demo: the packaged syncs file over the embedded SQLite warehouse and a local state database.
A `dg` project uses `PendoSyncComponent` instead; both build through `build_pendo_definitions`.
"""

from pendo_assets.defs.env_resources import resources_from_env
from pendo_assets.defs.environment import demo_warehouse_path, syncs_file
from pendo_assets.defs.executors import executor_from_env
from pendo_assets.defs.factory import build_pendo_definitions
from pendo_assets.sync.spec import load_syncs_file

defs = build_pendo_definitions(
    load_syncs_file(syncs_file()),
    resources=resources_from_env(warehouse_url_default=f"sqlite:///{demo_warehouse_path()}"),
    # PENDO_EXECUTOR=celery sends every step to Celery workers (PENDO_CELERY_BROKER, ...).
    executor=executor_from_env(),
)
