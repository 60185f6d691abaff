"""From a partition's DataFrame to metadata records: ids, values, validation, last row wins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pendo_assets.client import EncodedRecords
from pendo_assets.sync.prepare.convert import to_identifiers, to_json_scalars
from pendo_assets.sync.prepare.json_columns import encoded, fill, object_pieces, objects
from pendo_assets.sync.results import RowFailure
from pendo_assets.sync.spec import AGENT_PREFIX, SyncSpec

SUPERSEDED = "superseded by a later row for the same id"


@dataclass
class PreparedMetadata:
    """Column-wise values of one partition, and the verdict on every row before sending."""

    rows: int
    ids: list[str | None]
    custom: dict[str, list[object]]
    agent: dict[str, list[object]]
    sendable: np.ndarray  # row positions to send, in partition order
    failures: dict[int, RowFailure] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    # Per group, each sendable row's values as one JSON object text: encoded once, for the
    # change hash and the request body alike, until coercion changes a value of the group.
    _json: dict[str, list[str]] = field(default_factory=dict, repr=False)
    # A sync with one group: that group, and the payloads its text is cut out of (until
    # coercion changes a value of the group).
    _cut_from: tuple[str, list[str]] | None = field(default=None, repr=False)

    def payloads(self) -> list[str]:
        """Each sendable row's whole payload `{"agent": {...}, "custom": {...}}` (groups that
        have columns; sorted names, the text `canonical_json` gives, so hashes never change).

        With one group (the common case), the payload is joined per row straight from
        the encoded columns, and the group's own text is later cut out of it (`group_json`,
        only for rows that are sent), instead of being built first and wrapped a second time.
        """
        groups = [g for g in ("agent", "custom") if self._columns(g)]
        if len(groups) != 1:
            texts = [self.group_json(group) for group in groups]
            if not texts:
                return ["{}"] * len(self.sendable)
            pieces, _ = object_pieces(groups)  # "agent" sorts before "custom"
            return fill(pieces, texts)
        [group] = groups
        names, values = _encoded(self._columns(group), self.sendable)
        pieces, order = object_pieces(names)
        pieces[0] = '{"' + group + '":' + pieces[0]
        pieces[-1] += "}"
        payloads = fill(pieces, [values[i] for i in order])
        self._cut_from = (group, payloads)
        return payloads

    def group_json(self, group: str) -> list[str]:
        """Each sendable row's `{name: value}` object of one group as JSON text (sorted
        names), aligned with `sendable`."""
        texts = self._json.get(group)
        if texts is None:
            if self._cut_from is not None and self._cut_from[0] == group:
                start = len(group) + 4  # after `{"custom":`, up to the closing brace
                texts = [payload[start:-1] for payload in self._cut_from[1]]
            else:
                names, values = _encoded(self._columns(group), self.sendable)
                texts = objects(names, values) if names else ["{}"] * len(self.sendable)
            self._json[group] = texts
        return texts

    def values_changed(self, group: str) -> None:
        """A group's values were replaced (coerced): its JSON text is encoded again."""
        self._json.pop(group, None)
        if self._cut_from is not None and self._cut_from[0] == group:
            self._cut_from = None

    def records(self, group: str, positions: Sequence[int]) -> EncodedRecords:
        """The records of one batch's rows, so bodies never pile up in memory; their values
        are the group's JSON text, encoded once."""
        texts = self.group_json(group)
        rows = np.asarray(positions, dtype=np.int64)
        indexes = np.searchsorted(self.sendable, rows).tolist()
        ids = list(map(self.ids.__getitem__, rows.tolist()))
        return EncodedRecords(ids, list(map(texts.__getitem__, indexes)))  # type: ignore[arg-type]

    @property
    def groups(self) -> list[str]:
        return [g for g, cols in (("custom", self.custom), ("agent", self.agent)) if cols]

    def _columns(self, group: str) -> dict[str, list[object]]:
        return self.custom if group == "custom" else self.agent


def _encoded(
    columns: dict[str, list[object]], positions: np.ndarray
) -> tuple[list[str], list[list[str]]]:
    """The names, and the values of the rows at `positions` as JSON text, a column at a time
    (strict: a request body has no NaN)."""
    if not columns:
        return [], []
    whole = len(positions) == len(next(iter(columns.values())))  # every row: no picking
    rows = positions.tolist()
    values = [
        encoded(column if whole else [column[p] for p in rows], strict=True)
        for column in columns.values()
    ]
    return list(columns), values


def prepare_metadata(spec: SyncSpec, frame: pd.DataFrame) -> PreparedMetadata:
    """Validate every row and pick the ones to send; the frame is in partition-column order."""
    rows = len(frame)
    failures: dict[int, RowFailure] = {}
    ids = to_identifiers(frame[spec.id_column])
    # Within a partition the last row for an id wins; earlier ones are skipped, not sent, and
    # not judged either: only the winning row's values matter.
    superseded = pd.Series(ids.values, dtype=object).duplicated(keep="last").to_numpy(copy=True)
    superseded &= ~ids.invalid
    skipped = {int(p): SUPERSEDED for p in np.flatnonzero(superseded)}
    for position in np.flatnonzero(ids.invalid):
        failures[int(position)] = RowFailure(
            int(position),
            None,
            f"{spec.id_target} identifier {ids.reason_at(int(position))}",
            field=spec.id_target,
        )

    custom: dict[str, list[object]] = {}
    agent: dict[str, list[object]] = {}
    for column, target in spec.mapping.items():
        if target == spec.id_target:
            continue
        converted = to_json_scalars(frame[column])
        name = target.removeprefix(AGENT_PREFIX)
        (agent if target.startswith(AGENT_PREFIX) else custom)[name] = converted.values
        for position in np.flatnonzero(converted.invalid & ~superseded):
            failures.setdefault(
                int(position),
                RowFailure(
                    int(position),
                    ids.values[position],
                    f"column {column!r}: {converted.reason_at(int(position))}",
                    field=target,
                ),
            )

    sendable = ~superseded
    sendable[list(failures)] = False
    return PreparedMetadata(
        rows=rows,
        ids=ids.values,
        custom=custom,
        agent=agent,
        sendable=np.flatnonzero(sendable),
        failures=failures,
        skipped=skipped,
    )
