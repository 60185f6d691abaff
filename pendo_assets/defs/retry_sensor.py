"""Per sync: a sensor that re-runs the partitions whose last run left failed rows a retry can fix.

Only retryable failures count (Pendo unavailable, HTTP 429/5xx, rows not sent, sends in doubt
under `in_doubt: resend`): a validation failure fails again until the warehouse row changes,
and the change sensor sees that change. A retry run is an ordinary run of the sync's job for
one partition. Rows Pendo already has unchanged are skipped, so only the failed rows go out
again, with their current warehouse values. When the run ends, the partition's earlier failures
are marked resolved in `pendo_sync_failures` and the rows that still fail are recorded again,
with the new time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg
import sqlalchemy as sa

if TYPE_CHECKING:  # what define_asset_job returns; dagster does not export the name
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

from pendo_assets.sync.record.failure_store import as_utc
from pendo_assets.sync.spec import SyncSpec

from .database_resources import SyncStateResource
from .run_overlap import partitions_in_flight, sync_partition_tags
from .sync_assets import SyncKeys, default_keys

RETRY_SENSOR_INTERVAL_SECONDS = 60
RETRY_ATTEMPT_TAG = "pendo_assets/retry_attempt"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The evaluation time; tests pass their own clock to `build_retry_sensor` instead."""
    return datetime.now(UTC)


def retry_sensor_name(spec: SyncSpec) -> str:
    return f"{spec.name}_retry_failed_rows"


def retry_delay(spec: SyncSpec, attempts: int) -> timedelta:
    """How long attempt `attempts + 1` waits: the base delay, doubled for every attempt made."""
    return timedelta(minutes=spec.retry_base_delay_minutes * 2**attempts)


@dataclass
class PartitionRetries:
    """The cursor's entry for one partition with unresolved failures.

    `failed_at` is the latest failure the last decision was based on; `requested_at` is when the
    last attempt was requested (None before the first).
    """

    attempts: int = 0
    failed_at: datetime | None = None
    requested_at: datetime | None = None
    gave_up: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "failed_at": _iso(self.failed_at),
            "requested_at": _iso(self.requested_at),
            "gave_up": self.gave_up,
        }

    @classmethod
    def from_json(cls, data: Any) -> PartitionRetries:
        return cls(
            attempts=int(data["attempts"]),
            failed_at=_parse(data.get("failed_at")),
            requested_at=_parse(data.get("requested_at")),
            gave_up=bool(data.get("gave_up", False)),
        )

    def due(self, spec: SyncSpec, latest_failure: datetime) -> datetime:
        """When the next attempt (or, after the last one, giving up) is due.

        Counted from the latest failure, or from the last request if that is later: a retry run
        that has not ended yet (queued, running, or stopped before recording anything) has left
        no newer failure, and is given the full delay before another attempt.
        """
        start = max(latest_failure, self.requested_at or latest_failure)
        try:
            return start + retry_delay(spec, self.attempts)
        except OverflowError:  # a delay past the year 9999: never
            return datetime.max.replace(tzinfo=UTC)


def parse_cursor(cursor: str | None) -> dict[str, PartitionRetries]:
    """The cursor as entries per partition key; raises ValueError when it cannot be read."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
        if not isinstance(data, dict):
            raise TypeError("not an object")
        return {str(key): PartitionRetries.from_json(value) for key, value in data.items()}
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(f"cannot read the cursor {cursor!r}: {error}") from None


def dump_cursor(entries: dict[str, PartitionRetries]) -> str:
    return json.dumps({key: entries[key].to_json() for key in sorted(entries)}, sort_keys=True)


def build_retry_sensor(
    spec: SyncSpec,
    job: UnresolvedAssetJobDefinition,
    *,
    keys: SyncKeys | None = None,
    clock: Clock | None = None,
) -> dg.SensorDefinition:
    """`<name>_retry_failed_rows`: requests partitions with unresolved retryable failures,
    with backoff.

    Attempt n of a partition is requested base_delay_minutes * 2**(n-1) after its latest
    failure, up to retry.max_attempts; then the sensor gives up on the partition (logged once)
    and its failures stay unresolved in `pendo_sync_failures`. A partition without unresolved
    retryable failures leaves the cursor, and failures newer than the ones it gave up on start
    again from attempt 1. A partition that a run of the sync has queued or running is held
    back until that run ends.
    """

    @dg.sensor(
        name=retry_sensor_name(spec),
        job=job,
        minimum_interval_seconds=RETRY_SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Re-runs the partitions of `{spec.name}` whose last run left rows a retry "
        "can fix (Pendo unavailable, HTTP 429/5xx, not sent), "
        f"up to {spec.retry_max_attempts} times, {spec.retry_base_delay_minutes:g} minutes "
        "after the failure and twice as long before each further attempt.",
    )
    def retry_failed_rows(
        context: dg.SensorEvaluationContext, sync_state: SyncStateResource
    ) -> dg.SensorResult | dg.SkipReason:
        if spec.retry_max_attempts == 0:
            return dg.SkipReason(f"retries are off for sync {spec.name!r} (retry.max_attempts: 0)")
        now = (clock or utc_now)()
        try:
            store = sync_state.failure_store()
            unresolved = store.unresolved_partitions(spec.name, retryable_only=True)
        except sa.exc.SQLAlchemyError as error:
            return dg.SkipReason(
                f"cannot read pendo_sync_failures ({sync_state.display_url}): "
                f"{getattr(error, 'orig', None) or error}"
            )
        try:
            previous = parse_cursor(context.cursor)
        except ValueError as error:
            context.log.warning(f"{error}; starting again from an empty cursor")
            previous = {}
        in_flight = partitions_in_flight(
            context.instance,
            job_name=job.name,
            asset_keys=keys or default_keys(spec),
            partition_keys=(key for key in unresolved if key is not None),
        )
        return _evaluate(spec, context, now, unresolved, previous, in_flight)

    return retry_failed_rows


def _evaluate(
    spec: SyncSpec,
    context: dg.SensorEvaluationContext,
    now: datetime,
    unresolved: dict[str | None, tuple[int, datetime]],
    previous: dict[str, PartitionRetries],
    in_flight: set[str],
) -> dg.SensorResult | dg.SkipReason:
    """One evaluation: which partitions to request, and the cursor that follows."""
    entries: dict[str, PartitionRetries] = {}
    requests: list[dg.RunRequest] = []
    waiting: list[tuple[datetime, str, int]] = []  # (due, partition, next attempt)
    held_back: list[str] = []
    gave_up = 0
    # Failures without a partition cannot be re-run by partition; the sync's assets all have one.
    partitions = sorted((k, v) for k, v in unresolved.items() if k is not None)
    for partition, (count, latest_failed_at) in partitions:
        latest = as_utc(latest_failed_at)
        entry = previous.get(partition, PartitionRetries())
        if entry.gave_up and entry.failed_at is not None and latest > entry.failed_at:
            # A later run failed again: a new round of failures, from attempt 1.
            entry = PartitionRetries()
        elif partition in previous:  # a partition enters the cursor with its first attempt
            entries[partition] = entry
        if entry.gave_up:
            gave_up += 1
            continue
        due = entry.due(spec, latest)
        if now < due:
            waiting.append((due, partition, entry.attempts + 1))
            continue
        if partition in in_flight:  # that run may fix it, or leave newer failures behind
            held_back.append(partition)
            continue
        if entry.attempts >= spec.retry_max_attempts:
            context.log.warning(
                f"giving up on partition {partition} after {entry.attempts} attempts; "
                f"{count} rows still failing: see pendo_sync_failures"
            )
            entries[partition] = replace(entry, failed_at=latest, gave_up=True)
            gave_up += 1
            continue
        attempt = entry.attempts + 1
        requests.append(
            dg.RunRequest(
                partition_key=partition,
                # The failure it is based on tells apart a later round of failures of the same
                # partition, whose attempts count from 1 again: Dagster never reuses a run key.
                run_key=f"{spec.name}:retry:{partition}:{attempt}:{_iso(latest)}",
                tags={RETRY_ATTEMPT_TAG: str(attempt), **sync_partition_tags(spec.name, partition)},
            )
        )
        entries[partition] = PartitionRetries(attempts=attempt, failed_at=latest, requested_at=now)
    if held_back:
        context.log.info(
            f"held back {len(held_back)} partition(s) of sync {spec.name!r} with a run queued or "
            f"in progress: {', '.join(held_back)}"
        )
    cursor = dump_cursor(entries)
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=cursor)
    message = _skip_message(spec, waiting, gave_up, held_back)
    if entries == previous:
        return dg.SkipReason(message)
    return dg.SensorResult(skip_reason=message, cursor=cursor)


def _skip_message(
    spec: SyncSpec,
    waiting: list[tuple[datetime, str, int]],
    gave_up: int,
    held_back: list[str],
) -> str:
    if not waiting and not gave_up and not held_back:
        return f"no unresolved retryable failures of sync {spec.name!r} in pendo_sync_failures"
    parts = []
    if held_back:
        parts.append(
            f"{len(held_back)} partition(s) held back while a run of them is queued or in "
            f"progress: {', '.join(held_back)}"
        )
    if waiting:
        due, partition, attempt = min(waiting)
        step = (
            f"attempt {attempt} of {spec.retry_max_attempts}"
            if attempt <= spec.retry_max_attempts
            else "giving up"
        )
        parts.append(
            f"{len(waiting)} partition(s) with failed rows waiting; next: {partition} "
            f"({step}) at {_iso(due)}"
        )
    if gave_up:
        parts.append(
            f"gave up on {gave_up} partition(s) after {spec.retry_max_attempts} attempts "
            "(see pendo_sync_failures)"
        )
    return "; ".join(parts)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _parse(text: Any) -> datetime | None:
    return None if text is None else as_utc(datetime.fromisoformat(str(text)))
