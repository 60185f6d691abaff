"""What the benchmarks print about the machine they ran on: CPU, cores, load."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (what `platform` reports where there is none)."""
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )


def cores() -> int:
    """The cores this process may run on (what a 2-core machine's numbers depend on)."""
    return len(os.sched_getaffinity(0))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how shared the machine was."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
