"""The sync engine: mapping, validation, batching, delivery and row results. No Dagster."""
