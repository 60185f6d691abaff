"""Sends a prepared metadata partition: batches over a bounded pool sharing one client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import numpy as np

from pendo_assets.batching import chunks
from pendo_assets.client import AcceptedRecords, FailureKind, PendoAuthError, PendoClient
from pendo_assets.sync.deliver.outcome import DeliveryOutcome, brief
from pendo_assets.sync.prepare.metadata_rows import PreparedMetadata

WorkItem = np.ndarray  # the row positions of one batch

OnAccepted = Callable[[np.ndarray], None]


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
    positions: np.ndarray,
    *,
    kind: str,
    create: bool,
    max_in_flight: int,
    on_accepted: OnAccepted | None = None,
    lost: Callable[[], str | None] | None = None,
) -> DeliveryOutcome:
    """Send the rows at `positions`; `on_accepted` hears each batch's fully accepted rows.

    A batch's groups go one after the other: the agent request carries only the rows whose
    custom values Pendo accepted, so a row is never left half written by this sync. Without
    `create` (update mode), ids Pendo does not know are set aside as not in Pendo, not failed.
    """
    outcome = DeliveryOutcome(prepared.rows)
    groups = prepared.groups

    def work(batch: WorkItem) -> None:
        try:
            send_batch(batch)
        except Exception as error:  # a bug or a refused value: stop with every row accounted for
            outcome.abort(f"internal error while sending metadata: {brief(error)}", error)

    def send_batch(batch: WorkItem) -> None:
        pending = batch
        retried: set[int] = set()
        for group in groups:
            if outcome.stop_if(lost) or not len(pending):
                return
            records = prepared.records(group, pending)
            try:
                results = client.write_metadata_batch(kind, records, group=group, create=create)
            except PendoAuthError as error:
                outcome.abort_on_auth(error)
                return
            outcome.note_item(results)
            if isinstance(results, AcceptedRecords):  # the common case: no per-row look
                if results.retried:
                    retried.update(pending.tolist())
                continue
            accepted = []
            for position, result in zip(pending, results, strict=True):
                if result.ok:
                    accepted.append(position)
                    if result.retried:
                        retried.add(int(position))
                elif result.kind == FailureKind.NOT_FOUND and not create:
                    outcome.skip_not_in_pendo(int(position))
                else:
                    outcome.add(int(position), result)
            pending = np.asarray(accepted, dtype=np.int64)
        outcome.accept_all(pending, retried)
        if len(pending) and on_accepted is not None:
            try:
                on_accepted(pending)
            except Exception as error:  # sent but not remembered: stop, do not go on
                cause = brief(getattr(error, "orig", None) or error)
                outcome.abort(f"could not record accepted records in sync state: {cause}", error)

    run_bounded(
        chunks(positions, client.batch_size), work, max_in_flight=max_in_flight, outcome=outcome
    )
    outcome.finish()
    return outcome
