"""Reading Pendo's metadata schema: which custom and agent fields exist, with their types."""

from __future__ import annotations

from typing import Any

from .models import FieldSchema, MetadataSchema


def schema_path(kind: str) -> str:
    return f"/api/v1/metadata/schema/{kind}"


def parse_schema(kind: str, body: Any) -> MetadataSchema:
    """Build the schema from Pendo's JSON, leaving out fields Pendo marks deleted."""
    if not isinstance(body, dict):
        raise ValueError(
            f"Pendo's {kind} metadata schema is not a JSON object: {str(body)[:200]!r}"
        )

    def group(name: str) -> dict[str, FieldSchema]:
        declared = body.get(name) or {}
        if not isinstance(declared, dict):
            return {}
        fields: dict[str, FieldSchema] = {}
        for field_name, attrs in declared.items():
            attrs = attrs if isinstance(attrs, dict) else {}
            if attrs.get("isDeleted"):
                continue
            fields[field_name] = FieldSchema(
                name=field_name,
                type=str(attrs.get("Type") or "unknown"),
                group=name,
                display_name=attrs.get("DisplayName"),
            )
        return fields

    return MetadataSchema(kind=kind, custom=group("custom"), agent=group("agent"))
