"""Source: a partition's rows out of the warehouse, chunk by chunk (read-only)."""
