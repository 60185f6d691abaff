"""Metadata writes and the schema endpoint, applied to the store. No HTTP here."""

from __future__ import annotations

from typing import Any

from pendo_assets.sandbox.config import SandboxConfig
from pendo_assets.sandbox.rules import check_metadata_record
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
    updated = 0
    errors: list[str] = []
    missing: list[str] = []
    for record in records:
        check = check_metadata_record(kind, group, record, declared)
        if check.error is not None:
            errors.append(check.error)
            continue
        assert check.record_id is not None and check.values is not None
        if not create and not store.exists(kind, check.record_id):
            if check.record_id not in missing:
                missing.append(check.record_id)
            continue
        store.merge_values(kind, group, check.record_id, check.values)
        updated += 1
    return {
        "total": len(records),
        "updated": updated,
        "failed": len(errors),
        "missing": missing,
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
