"""Track events: one request each; any 2xx is success. Pendo has no batch endpoint.

Pendo records an event every time it receives it, so a send whose answer was lost is reported
as in doubt rather than repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import PendoInDoubtError, PendoUnavailableError
from .models import FailureKind, RecordResult, TrackEvent
from .transport import Outcome, response_message

TRACK_PATH = "/data/track"


def track_result(event: TrackEvent, send: Callable[[dict[str, Any]], Outcome]) -> RecordResult:
    """Send one event and say what became of it; auth errors propagate and stop the sync."""
    record_id = event.record_id or event.visitor_id
    try:
        outcome = send(event.payload())
    except PendoUnavailableError as exc:
        return RecordResult.failed(
            record_id, str(exc), kind=FailureKind.UNAVAILABLE, retried=True, status=exc.status
        )
    except PendoInDoubtError as exc:
        return RecordResult.failed(
            record_id,
            f"Pendo may have received this event: {exc.problem} on {exc.method} {exc.path}; "
            "not sent again, as a second send could record it twice",
            kind=FailureKind.IN_DOUBT,
            retried=exc.attempts > 1,
            status=exc.status,
        )
    response = outcome.response
    if 200 <= response.status_code < 300:
        return RecordResult.accepted(record_id, retried=outcome.retried)
    return RecordResult.failed(
        record_id,
        f"HTTP {response.status_code}: {response_message(response)}",
        kind=FailureKind.HTTP,
        retried=outcome.retried,
        status=response.status_code,
    )
