"""Plain data the client takes and returns: records, events, per-record results, schemas."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, overload

MetadataKind = Literal["visitor", "account"]
MetadataGroup = Literal["custom", "agent"]
METADATA_KINDS: tuple[str, ...] = ("visitor", "account")
METADATA_GROUPS: tuple[str, ...] = ("custom", "agent")
ID_KEYS: dict[str, str] = {"visitor": "visitorId", "account": "accountId"}


class FailureKind:
    """Why a record failed, coarse enough for a sync to decide what to do next."""

    NOT_FOUND = "not_found"  # unknown id written without create=true
    REJECTED = "rejected"  # Pendo answered 200 but counted the record as failed
    HTTP = "http"  # a non-retryable error status for the request that carried it
    TOO_LARGE = "too_large"  # 413 even alone in a request
    UNAVAILABLE = "unavailable"  # retries exhausted: Pendo unreachable or failing
    BAD_RESPONSE = "bad_response"  # 2xx whose body does not say what was accepted
    IN_DOUBT = "in_doubt"  # a track event Pendo may have recorded: its answer was lost


class MetadataRecord(NamedTuple):
    """One visitor or account and the values to write into one metadata group.

    `values_json`, when given, is the JSON text of `values`, encoded once by the caller: it is
    what is sent, and `values` may then be left empty. A named tuple: one is built per record
    sent, at half a frozen dataclass's cost.
    """

    id: str
    values: dict[str, Any]
    values_json: str | None = None


@dataclass(slots=True)
class RecordResult:
    """What became of one record: accepted by Pendo, or failed with a reason.

    Treated as a value, but not frozen: one is built per record, and a frozen dataclass costs
    about 1 us to build against 0.3 us (measured), a tenth of a sync's CPU per row.
    """

    record_id: str
    ok: bool
    retried: bool = False
    reason: str | None = None
    kind: str | None = None
    status: int | None = None
    field: str | None = None
    errors: tuple[Any, ...] = ()

    @classmethod
    def accepted(cls, record_id: str, *, retried: bool) -> RecordResult:
        return cls(record_id, True, retried)  # positional: built once per record

    @classmethod
    def failed(
        cls,
        record_id: str,
        reason: str,
        *,
        kind: str,
        retried: bool,
        status: int | None = None,
        field: str | None = None,
        errors: tuple[Any, ...] = (),
    ) -> RecordResult:
        return cls(
            record_id=record_id,
            ok=False,
            retried=retried,
            reason=reason,
            kind=kind,
            status=status,
            field=field,
            errors=errors,
        )


class EncodedRecords(Sequence[MetadataRecord]):
    """Records whose values are JSON text already, ids and texts side by side.

    A `MetadataRecord` is built only when one is looked at (a failure to attribute, say): a
    batch of these goes into its request body without one object per record.
    """

    __slots__ = ("ids", "values_json")

    def __init__(self, ids: Sequence[str], values_json: Sequence[str]) -> None:
        if len(ids) != len(values_json):
            raise ValueError("EncodedRecords needs one JSON text per id")
        self.ids = ids
        self.values_json = values_json

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> MetadataRecord: ...
    @overload
    def __getitem__(self, index: slice) -> EncodedRecords: ...
    def __getitem__(self, index: int | slice) -> MetadataRecord | EncodedRecords:
        if isinstance(index, slice):
            return EncodedRecords(self.ids[index], self.values_json[index])
        return MetadataRecord(self.ids[index], {}, self.values_json[index])

    def __repr__(self) -> str:
        return f"EncodedRecords({len(self)} records)"


class AcceptedRecords(Sequence[RecordResult]):
    """The results of a batch Pendo accepted whole: one flag for all of its records.

    Reads as a sequence of `RecordResult`s, built only when looked at: most batches are
    accepted whole, and one result object per record was a tenth of a sync's CPU per row.
    """

    __slots__ = ("_records", "retried")

    def __init__(self, records: Sequence[MetadataRecord], *, retried: bool) -> None:
        self._records = records
        self.retried = retried

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> RecordResult: ...
    @overload
    def __getitem__(self, index: slice) -> list[RecordResult]: ...
    def __getitem__(self, index: int | slice) -> RecordResult | list[RecordResult]:
        if isinstance(index, slice):
            return list(AcceptedRecords(self._records[index], retried=self.retried))
        return RecordResult.accepted(self._records[index].id, retried=self.retried)

    def __iter__(self) -> Iterator[RecordResult]:
        retried = self.retried
        ids = _ids_of(self._records)
        return (RecordResult(record_id, True, retried) for record_id in ids)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"AcceptedRecords({len(self)} records, retried={self.retried})"


def _ids_of(records: Sequence[MetadataRecord]) -> Sequence[str]:
    if isinstance(records, EncodedRecords):
        return records.ids
    return [r.id for r in records]


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """One server-side track event; `record_id` is the caller's handle for the result."""

    event: str
    visitor_id: str
    timestamp: int
    account_id: str | None = None
    properties: dict[str, Any] | None = None
    context: dict[str, Any] = field(default_factory=dict)
    record_id: str | None = None

    def payload(self) -> dict[str, Any]:
        """The exact JSON body of `POST /data/track`."""
        if isinstance(self.timestamp, bool) or not isinstance(self.timestamp, int):
            raise TypeError(
                f"Track event timestamp must be integer milliseconds, got {self.timestamp!r}"
            )
        body: dict[str, Any] = {
            "type": "track",
            "event": self.event,
            "visitorId": self.visitor_id,
        }
        if self.account_id is not None:
            body["accountId"] = self.account_id
        body["timestamp"] = self.timestamp
        if self.properties is not None:
            body["properties"] = self.properties
        body["context"] = self.context
        return body


@dataclass(frozen=True, slots=True)
class FieldSchema:
    name: str
    type: str
    group: str
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class MetadataSchema:
    """The custom and agent fields Pendo declares for one kind (deleted fields left out)."""

    kind: str
    custom: dict[str, FieldSchema]
    agent: dict[str, FieldSchema]

    def fields(self, group: str) -> dict[str, FieldSchema]:
        return self.custom if group == "custom" else self.agent
