"""The scale demo (`make scale-demo`): backfills on two Celery workers, the Dagster instance on
PostgreSQL, one rate cap, measured at the sandbox. See `run` for what it does and checks."""
