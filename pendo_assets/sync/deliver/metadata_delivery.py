"""Sends a prepared metadata chunk: batches on the run's bounded pool, sharing one client."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pendo_assets.batching import chunks
from pendo_assets.client import AcceptedRecords, FailureKind, PendoAuthError, PendoClient
from pendo_assets.sync.deliver.outcome import DeliveryOutcome, brief
from pendo_assets.sync.deliver.send_pool import Delivery, SendPool, WorkItem
from pendo_assets.sync.prepare.metadata_rows import PreparedMetadata

OnAccepted = Callable[[np.ndarray], None]


def deliver_metadata(
    client: PendoClient,
    prepared: PreparedMetadata,
    positions: np.ndarray,
    *,
    kind: str,
    create: bool,
    pool: SendPool,
    on_accepted: OnAccepted | None = None,
    lost: Callable[[], str | None] | None = None,
) -> Delivery:
    """Start sending the rows at `positions` on `pool`; the delivery's outcome waits for them.

    `on_accepted` hears each batch's fully accepted rows. A batch's groups go one after the
    other: the agent request carries only the rows whose custom values Pendo accepted, so a row
    is never left half written by this sync. Without `create` (update mode), ids Pendo does not
    know are set aside as not in Pendo, not failed.
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

    futures = []
    for batch in chunks(positions, client.batch_size):
        if outcome.stop_if(lost):
            break
        futures.append(pool.submit(work, batch))
    return Delivery(outcome, futures)
