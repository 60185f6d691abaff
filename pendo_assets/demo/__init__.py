"""The demo: an embedded SQLite warehouse, the sandbox, and every sync run through Dagster."""
