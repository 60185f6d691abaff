"""Record: the sync state, leases and failed rows, in SQLite or PostgreSQL."""
