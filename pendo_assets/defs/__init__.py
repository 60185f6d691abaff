"""The Dagster layer: thin wiring of the Pendo client and the sync engine into Dagster."""
