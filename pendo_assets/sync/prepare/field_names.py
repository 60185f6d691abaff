"""Pendo's naming rules for metadata fields and event properties."""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 32
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def name_problem(name: object) -> str | None:
    """Why Pendo would refuse or hide this field or property name, or None when it is fine."""
    if not isinstance(name, str) or not name:
        return "name must be a non-empty string"
    if len(name) > MAX_NAME_LENGTH:
        return f"name {name!r} is longer than {MAX_NAME_LENGTH} characters"
    if name[0].isdigit():
        return f"name {name!r} starts with a digit"
    if not _NAME.fullmatch(name):
        return f"name {name!r} may hold only letters, digits and underscores"
    if name.startswith("__") and name.endswith("__"):
        return f"name {name!r} is wrapped in double underscores"
    return None
