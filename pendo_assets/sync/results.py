"""Row results and the sync report: every row read ends up sent, failed or skipped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MAX_FAILURES_SHOWN = 20


@dataclass(frozen=True, slots=True)
class RowFailure:
    """One failed row: which record, which field when known, and why."""

    row: int
    record_id: str | None
    reason: str
    field: str | None = None
    http_status: int | None = None
    # True when a later run may succeed where this one failed (Pendo unavailable, 429/5xx,
    # not sent, in doubt under `resend`); validation failures never are.
    retryable: bool = False


@dataclass(frozen=True)
class DryRun:
    """What a sync would do, found without sending anything or changing any state."""

    would_create: int
    would_change: int
    unchanged: int
    invalid: int
    preview: str


@dataclass
class SyncReport:
    """What one sync of one partition did. `rows == sent + failed + skipped` always."""

    sync_name: str
    partition_key: str | None
    rows: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    requests: int = 0
    duration_seconds: float = 0.0
    failures: list[RowFailure] = field(default_factory=list)
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    skipped_unchanged: int = 0  # of `skipped`: rows Pendo already has as they are
    not_in_pendo: int = 0  # of `skipped`: update mode, ids Pendo does not know
    changed_after_delivery: int = 0  # of `skipped`: delivered events whose content changed
    in_doubt: int = 0  # track sends whose answer was lost: duplicates can never exceed it
    destination: str | None = None  # where it went: base URL + credential fingerprint
    warnings: list[str] = field(default_factory=list)
    dry_run: DryRun | None = None
    # Metadata from a PostgreSQL warehouse: rows not read (unchanged), fingerprint kept, or
    # why not (`decide.unchanged_partition`); None where no fingerprint was taken.
    partition_fingerprint: str | None = None

    @property
    def records_per_second(self) -> float:
        return self.sent / self.duration_seconds if self.duration_seconds > 0 else 0.0

    @property
    def failure_rate(self) -> float:
        return self.failed / self.rows if self.rows else 0.0

    def check_invariant(self) -> None:
        """A report that loses rows is a bug, never a result to show."""
        if self.rows != self.sent + self.failed + self.skipped:
            raise AssertionError(
                f"sync {self.sync_name!r} partition {self.partition_key}: {self.rows} rows read "
                f"but sent {self.sent} + failed {self.failed} + skipped {self.skipped}"
            )
        if self.failed != len(self.failures):
            raise AssertionError(
                f"sync {self.sync_name!r}: {self.failed} failed rows but "
                f"{len(self.failures)} failure records"
            )

    def failures_markdown(self, limit: int = MAX_FAILURES_SHOWN) -> str:
        """The first failures as a markdown table (id, field, reason)."""
        if not self.failures:
            return "No failed rows."
        lines = ["| id | field | reason |", "|---|---|---|"]
        for failure in self.failures[:limit]:
            cells = [failure.record_id or "(missing)", failure.field or "", failure.reason]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        if len(self.failures) > limit:
            lines.append(f"\n{len(self.failures) - limit} more in table `pendo_sync_failures`.")
        return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]
