"""A separate process taking turns from a shared Pendo budget, as a sync step on another
worker would: `python -m pendo_assets_tests.budget_worker STATE_URL DESTINATION RATE COUNT`.

Prints one admission time a line (CLOCK_MONOTONIC, which every process of the host shares), so
the test can put every process's sends on one time line.
"""

from __future__ import annotations

import sys
import time

from pendo_assets.budget import budget_for_state


def main(state_url: str, destination: str, rate: float, count: int) -> None:
    budget = budget_for_state(state_url)
    limiter = budget.limiter(destination, rate)
    print("ready", flush=True)
    sys.stdin.readline()  # every process starts on the test's word
    stamps = []
    for _ in range(count):
        release = limiter.acquire()
        stamps.append(time.monotonic())  # when the send would be written
        release()
    budget.close()
    print("\n".join(repr(s) for s in stamps), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
