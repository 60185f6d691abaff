"""The scale demo's figures, the issue's numbers they are held to, and how they are printed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

BUSIEST_SECOND_TOLERANCE = 1.05  # the busiest second may exceed the cap by at most 5%
MIN_RATE_SHARE = 0.90  # all runs together get 90% of a destination's cap through
MIN_RUNS_AT_ONCE = 4
MIN_WORKERS = 2


@dataclass
class ScaleReport:
    """Everything one demo run measured. `checks` holds each number of the issue, met or not."""

    mode: str  # "backfill" or "worker-kill"
    cap: float
    days: list[str]
    requests: int = 0
    busiest_second: int = 0
    busiest_second_at: float = 0.0  # seconds after the first request
    busiest_second_by_credential: dict[str, int] = field(default_factory=dict)
    # All runs together at the destination they load (the most requests: the track secret's;
    # the cap is per destination), from its first request to its last. The metadata
    # destination gets 2 requests a run and cannot come near its own cap.
    combined_rate: float = 0.0
    loaded_destination: str = ""
    rate_by_credential: dict[str, float] = field(default_factory=dict)
    rate_all_destinations: float = 0.0  # every request, first to last of any destination
    sending_seconds: float = 0.0
    requests_per_5s: list[int] = field(default_factory=list)
    event_steps_per_5s: list[int] = field(default_factory=list)  # sending event steps
    pacing_429: int = 0
    counters: dict[str, Any] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, int] = field(default_factory=dict)
    runs: int = 0
    run_statuses: dict[str, int] = field(default_factory=dict)
    runs_at_once: int = 0
    pendo_steps_at_once: int = 0
    steps_by_worker: dict[str, int] = field(default_factory=dict)
    in_doubt_reported: int = 0
    killed_worker: str | None = None
    steps_lost_with_worker: list[str] = field(default_factory=list)
    duplicate_bound: int | None = None
    rerun_partitions: dict[str, list[str]] = field(default_factory=dict)
    partitions_succeeded: bool = False  # every partition of both jobs has a successful run
    wall_seconds: float = 0.0
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def judge(report: ScaleReport) -> None:
    """Fill `checks` with the issue's numbers: for a backfill, exactly once under the cap;
    for a backfill that lost a worker, nothing lost and duplicates within the bound (its rate
    and busiest second are reported, not judged: the partitions of the killed steps wait for
    their leases to expire)."""
    cap = report.cap
    rate_check = f"combined rate at the loaded destination >= {MIN_RATE_SHARE:.0%} of cap"
    checks = {
        f"at least {MIN_RUNS_AT_ONCE} runs at once": report.runs_at_once >= MIN_RUNS_AT_ONCE,
        f"steps ran on at least {MIN_WORKERS} Celery workers": len(report.steps_by_worker)
        >= MIN_WORKERS,
    }
    if report.mode == "backfill":
        checks.update(
            {
                "every event exactly once": _exactly_once(report.events),
                "every metadata record exactly once": _exactly_once(report.metadata),
                # The cap is per destination (the metadata key's, the track secret's).
                f"busiest second of each destination <= {BUSIEST_SECOND_TOLERANCE:.2f} x cap": max(
                    report.busiest_second_by_credential.values(), default=0
                )
                <= cap * BUSIEST_SECOND_TOLERANCE,
                "no pacing 429": report.pacing_429 == 0,
                rate_check: report.combined_rate >= cap * MIN_RATE_SHARE,
                "every run succeeded": set(report.run_statuses) == {"SUCCESS"},
            }
        )
    else:
        checks.update(
            {
                "a worker was killed mid-step": bool(report.steps_lost_with_worker),
                "every partition ended with a successful run": report.partitions_succeeded,
                "every event landed": _all_landed(report.events),
                "every metadata record landed": _all_landed(report.metadata),
                "event duplicates within the in-doubt bound": report.duplicate_bound is not None
                and report.events.get("duplicates", 0) <= report.duplicate_bound,
            }
        )
    report.checks = checks


def _exactly_once(landing: dict[str, int]) -> bool:
    return (
        landing.get("landed_once") == landing.get("expected")
        and not landing.get("missing")
        and not landing.get("duplicates")
        and not landing.get("unexpected")
    )


def _all_landed(landing: dict[str, int]) -> bool:
    return not landing.get("missing") and not landing.get("unexpected")


def format_report(report: ScaleReport) -> str:
    cap = report.cap
    by_credential = ", ".join(f"{k} {v}" for k, v in report.busiest_second_by_credential.items())
    workers = ", ".join(f"{k}: {v}" for k, v in sorted(report.steps_by_worker.items()))
    lines = [
        f"== scale demo ({report.mode}): {len(report.days)} daily partitions "
        f"{report.days[0]}..{report.days[-1]} of events and of visitor metadata",
        f"cap (PENDO_MAX_REQUESTS_PER_SECOND): {cap:g} requests/s",
        f"achieved rate at {report.loaded_destination}: {report.combined_rate:.1f} requests/s "
        f"({report.combined_rate / cap:.0%} of the cap), all runs together from its first "
        "request to its last; per credential: "
        + ", ".join(f"{k} {v:.1f}/s" for k, v in report.rate_by_credential.items()),
        f"every request: {report.requests} in {report.sending_seconds:.1f}s from the first to "
        f"the last of any destination ({report.rate_all_destinations:.1f}/s)",
        f"busiest second: {report.busiest_second} requests ({report.busiest_second / cap:.0%} "
        f"of the cap), {report.busiest_second_at:.1f}s after the first request; per credential: "
        f"{by_credential}",
        f"requests per 5 s: {report.requests_per_5s}",
        f"event steps running per 5 s: {report.event_steps_per_5s}",
        f"pacing 429s: {report.pacing_429}; sandbox statuses: "
        f"{report.counters.get('responses_by_status')}",
        f"events: {report.events}",
        f"metadata records: {report.metadata}",
        f"runs: {report.runs} {report.run_statuses}; at once: {report.runs_at_once} runs, "
        f"{report.pendo_steps_at_once} Pendo steps",
        f"steps per Celery worker: {workers}",
        f"in_doubt reported by the event runs: {report.in_doubt_reported}",
    ]
    if report.mode != "backfill":
        lines += [
            f"killed worker: {report.killed_worker}, steps lost with it: "
            f"{report.steps_lost_with_worker}",
            f"event duplicates allowed (in-doubt bound): {report.duplicate_bound}",
            f"re-run partitions: {report.rerun_partitions or 'none needed'}",
        ]
    lines.append(f"wall time: {report.wall_seconds:.0f}s")
    lines += [f"  [{'ok' if ok else 'FAILED'}] {name}" for name, ok in report.checks.items()]
    return "\n".join(lines)
