"""Sends a prepared metadata partition: batches over a bounded pool sharing one client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import numpy as np

from pendo_assets.client import PendoAuthError, PendoClient, RecordResult

from .metadata_rows import PreparedMetadata
from .outcome import DeliveryOutcome

WorkItem = tuple[str, np.ndarray]  # (group, row positions)


def _work_items(prepared: PreparedMetadata, batch_size: int) -> Iterator[WorkItem]:
    for start in range(0, len(prepared.sendable), batch_size):
        positions = prepared.sendable[start : start + batch_size]
        for group in prepared.groups:
            yield group, positions


def run_bounded(
    items: Iterator[WorkItem],
    work: Callable[[WorkItem], None],
    *,
    max_in_flight: int,
    outcome: DeliveryOutcome,
) -> None:
    """At most `max_in_flight` items running and none queued beyond that: bounded memory."""
    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="pendo-send") as pool:
        running: set[Future[None]] = set()
        for item in items:
            if outcome.aborted:
                break
            running.add(pool.submit(work, item))
            if len(running) >= max_in_flight:
                running = _settle(running, FIRST_COMPLETED)
        _settle(running, ALL_COMPLETED)


def _settle(running: set[Future[None]], return_when: str) -> set[Future[None]]:
    """Wait; re-raise programming errors (delivery errors are recorded); return what runs."""
    done, pending = wait(running, return_when=return_when)
    for future in done:
        future.result()
    return pending


def deliver_metadata(
    client: PendoClient,
    prepared: PreparedMetadata,
    *,
    kind: str,
    create: bool,
    max_in_flight: int,
) -> DeliveryOutcome:
    outcome = DeliveryOutcome(prepared.rows, requests_per_row=len(prepared.groups))

    def work(item: WorkItem) -> None:
        group, positions = item
        if outcome.aborted:
            return
        records = list(prepared.records(group, positions))
        try:
            results: list[RecordResult] = client.write_metadata_batch(
                kind, records, group=group, create=create
            )
        except PendoAuthError as error:
            outcome.abort_on_auth(error)
            return
        for position, result in zip(positions, results, strict=True):
            outcome.add(int(position), result)
        outcome.note_item(results)

    run_bounded(
        _work_items(prepared, client.batch_size), work, max_in_flight=max_in_flight, outcome=outcome
    )
    outcome.finish()
    return outcome
