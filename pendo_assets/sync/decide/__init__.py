"""Decide: record keys, payload hashes and the state lookup: send, skip or fail."""
