"""Deliver: bounded pools of requests to Pendo, and what became of each row."""
