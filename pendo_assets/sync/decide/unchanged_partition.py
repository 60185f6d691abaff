"""A metadata partition whose rows and sync state are as a run left them: nothing to read.

Before the rows are read, the warehouse fingerprints them (`source.partition_fingerprint`).
If a run of this sync kept the same fingerprint at the scope's current change count
(`record.partition_fingerprints`), every row would be skipped as unchanged (or superseded):
the run reports them so and reads nothing. Otherwise the rows are read as always, and when
the run ends with every row sent or skipped as unchanged (no failure, nothing Pendo did not
know, no stop), its fingerprint is kept for the next run.

The fingerprint's seed holds whatever else decides what is sent for the same rows: the
mapping and source, the mode, the object type, and the package version (so an upgrade, which
may convert values differently, reads every partition once).
"""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa

import pendo_assets
from pendo_assets.sync.decide.change_detection import ALREADY_SENT, UNCHANGED
from pendo_assets.sync.prepare.metadata_rows import SUPERSEDED
from pendo_assets.sync.record.partition_fingerprints import (
    KeptFingerprint,
    change_count,
    keep_fingerprint,
    kept_fingerprint,
)
from pendo_assets.sync.record.partition_lease import PartitionLease
from pendo_assets.sync.record.state_store import LeaseLost, StateScope
from pendo_assets.sync.results import SyncReport
from pendo_assets.sync.source.partition_fingerprint import PartitionFingerprint
from pendo_assets.sync.source.warehouse import FingerprintCheck
from pendo_assets.sync.spec import SyncSpec

logger = logging.getLogger("pendo_assets.sync")

#: What `SyncReport.partition_fingerprint` says when the rows were not read.
NOT_READ = "unchanged since run {run}: rows not read"
KEPT = "kept for the next run"
#: Skip reasons that the same rows and state give again, whatever happens meanwhile in Pendo.
_SETTLED = {UNCHANGED, ALREADY_SENT, SUPERSEDED}


def sync_seed(spec: SyncSpec) -> str:
    """Everything besides the rows that decides what a metadata sync sends."""
    source = spec.source
    return json.dumps(
        {
            "package": pendo_assets.__version__,
            "object_type": spec.object_type,
            "mode": spec.mode,
            "mapping": list(spec.mapping.items()),
            "source": [source.table, source.query, source.partition_column, source.timezone],
            "partition_kind": source.partition_kind,
            "keep_payloads": spec.keep_payloads,
        }
    )


class UnchangedPartition:
    """The fingerprint check of one run of one partition, and what came of it.

    Made before the run reads any state: `since` is the scope's change count then. With
    `may_skip` false (a full refresh) the rows are always read, but the fingerprint is still
    kept at the end.
    """

    def __init__(
        self, spec: SyncSpec, scope: StateScope, partition_key: str, *, may_skip: bool
    ) -> None:
        self._spec = spec
        self._scope = scope
        self._partition_key = partition_key
        self.since = change_count(scope)
        kept = kept_fingerprint(scope, partition_key)
        # The kept fingerprint that may still let the rows go unread: taken at today's count.
        self._match = kept if may_skip and kept is not None and kept.changes == self.since else None
        self.taken: PartitionFingerprint | None = None
        self.skipped: KeptFingerprint | None = None  # set when the rows were not read

    @property
    def check(self) -> FingerprintCheck:
        """Asked before the read only when a kept fingerprint could still match; otherwise
        after it, to be kept (a first sync does not wait for it)."""
        first = self._match is not None
        return FingerprintCheck(sync_seed(self._spec), self._wants_rows, first=first)

    def _wants_rows(self, fingerprint: PartitionFingerprint) -> bool:
        self.taken = fingerprint
        match = self._match
        if match is None or (match.digest, match.rows) != (fingerprint.digest, fingerprint.rows):
            return True
        self.skipped = match
        return False

    def account(self, report: SyncReport) -> None:
        """The rows not read, as the run that kept the fingerprint would find them now."""
        kept = self.skipped
        assert kept is not None
        unchanged = kept.rows - kept.superseded
        report.rows += kept.rows
        report.skipped += kept.rows
        report.skipped_unchanged += unchanged
        reason = ALREADY_SENT if self._spec.mode == "insert" else UNCHANGED
        for why, count in ((reason, unchanged), (SUPERSEDED, kept.superseded)):
            if count:
                report.skipped_reasons[why] += count
        report.partition_fingerprint = NOT_READ.format(run=kept.run_id)

    def keep(self, report: SyncReport, *, run_id: str, lease: PartitionLease | None) -> None:
        """Keep the fingerprint if the run left nothing for a next run to do; the report says
        whether it was kept, and why not. A failure here costs the next run a read, no more."""
        taken = self.taken
        if taken is None:
            return
        problem = _unsettled(report, taken)
        if problem is None:
            try:
                problem = keep_fingerprint(
                    self._scope,
                    self._partition_key,
                    taken,
                    superseded=report.skipped_reasons[SUPERSEDED],
                    since=self.since,
                    run_id=run_id,
                    lease=lease,
                )
            except (sa.exc.SQLAlchemyError, LeaseLost) as error:
                problem = f"cannot write it: {type(error).__name__}"
                logger.warning(
                    "sync %r partition %s: partition fingerprint not kept (%s): %s",
                    self._spec.name,
                    self._partition_key,
                    problem,
                    getattr(error, "orig", None) or error,
                )
        report.partition_fingerprint = KEPT if problem is None else f"not kept: {problem}"


def _unsettled(report: SyncReport, taken: PartitionFingerprint) -> str | None:
    """Why a next run with the same rows might still have something to do, if it might."""
    if report.rows != taken.rows:
        return f"{report.rows} rows read but {taken.rows} fingerprinted"
    if report.failed:
        return f"{report.failed} row(s) failed"
    if report.not_in_pendo:
        return f"{report.not_in_pendo} row(s) not in Pendo"
    unsettled = set(report.skipped_reasons) - _SETTLED
    if unsettled:
        return "rows skipped: " + ", ".join(sorted(unsettled))
    return None
