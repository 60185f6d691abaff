"""pendo-assets: Dagster-native reverse ETL from your warehouse into Pendo."""

__version__ = "0.1.0"
