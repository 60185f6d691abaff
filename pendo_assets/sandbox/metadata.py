"""Metadata writes and the schema endpoint, applied to the store. No HTTP here."""

from __future__ import annotations

from typing import Any

from pendo_assets.sandbox.config import SandboxConfig
from pendo_assets.sandbox.rules import ID_KEYS, metadata_record_error
from pendo_assets.sandbox.store import SandboxStore

# A few of the fields Pendo fills in by itself; clients see them in the schema but never write them.
_AUTO_FIELDS: dict[str, dict[str, str]] = {
    "visitor": {
        "id": "string",
        "accountid": "string",
        "firstvisit": "time",
        "lastvisit": "time",
        "lastbrowsername": "string",
    },
    "account": {"id": "string", "firstvisit": "time", "lastvisit": "time"},
}


def write_batch(
    store: SandboxStore,
    config: SandboxConfig,
    kind: str,
    group: str,
    records: list[Any],
    create: bool,
) -> dict[str, Any]:
    """Apply a metadata batch record by record, the way Pendo reports it.

    Each record is all-or-nothing; a failed record does not stop the others. ``failed`` does
    not count ``missing`` ids, and ``errors`` never say which record they are about.
    """
    declared = config.declared(kind, group)
    id_key = ID_KEYS[kind]
    accepted_ids: list[str] = []
    accepted_values: list[dict[str, Any]] = []
    errors: list[str] = []
    missing: dict[str, None] = {}  # an ordered set: each missing id once, in batch order
    for record in records:
        error = metadata_record_error(kind, group, record, declared)
        if error is not None:
            errors.append(error)
            continue
        record_id: str = record[id_key]  # present and well-typed: the check said so
        if not create and not store.exists(kind, record_id):
            missing[record_id] = None
            continue
        accepted_ids.append(record_id)
        accepted_values.append(record["values"])
    store.merge(kind, group, accepted_ids, accepted_values)
    return {
        "total": len(records),
        "updated": len(accepted_ids),
        "failed": len(errors),
        "missing": list(missing),
        "errors": errors,
    }


def schema(config: SandboxConfig, kind: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The body of ``GET /api/v1/metadata/schema/{kind}``."""
    return {
        "auto": _describe(_AUTO_FIELDS[kind]),
        "agent": _describe(config.declared(kind, "agent")),
        "custom": _describe(config.declared(kind, "custom")),
    }


def _describe(declared: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "Type": type_name,
            "DisplayName": name,
            "ElementType": "",
            "isDeleted": False,
            "isCalculated": False,
            "isPerApp": False,
        }
        for name, type_name in declared.items()
    }
