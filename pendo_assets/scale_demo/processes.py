"""The demo's processes: each in its own session, its output in a log file, all stopped at the end.

A process in its own session is its own process group, so stopping it (or killing it, to play
a machine that died) reaches everything it started: a Celery worker's pool children, the
daemon's code server and the run workers that code server spawned.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

STOP_SECONDS = 20.0
#: One process group id a line, written as each process starts: whoever has to stop the demo
#: by force (a test that timed out) can still stop everything it started.
GROUPS_FILE = "process_groups.txt"


class ProcessFailed(RuntimeError):
    """A process the demo needs exited or never became ready."""


class ManagedProcess:
    """One started process, its log, and the means to stop or kill its whole group."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first match of `pattern` in the log; fails if the process exits first."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = compiled.search(self.log.read_text(errors="replace"))
            if found:
                return found
            if not self.alive():
                raise ProcessFailed(f"{self.name} exited before {pattern!r}:\n{self.tail()}")
            time.sleep(0.2)
        raise ProcessFailed(f"{self.name}: no {pattern!r} within {timeout:.0f}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL the whole group at once: what losing the machine looks like to the rest."""
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_SECONDS)

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL whatever of it is left."""
        if self.alive():
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_SECONDS)
        self._signal_group(signal.SIGKILL)  # children the leader left behind, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_SECONDS)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)


class Processes:
    """Starts processes and stops every one of them, last first, when the block ends."""

    def __init__(self, logs: Path, cwd: Path) -> None:
        self.logs = logs
        self.cwd = cwd
        self.started: list[ManagedProcess] = []

    def start(self, name: str, command: Sequence[str], env: Mapping[str, str]) -> ManagedProcess:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        with (self.logs / GROUPS_FILE).open("a") as groups:
            groups.write(f"{process.pid}\n")
        managed = ManagedProcess(name, process, log)
        self.started.append(managed)
        return managed

    def stop_all(self) -> None:
        for managed in reversed(self.started):
            managed.stop()


@contextlib.contextmanager
def processes(logs: Path, cwd: Path) -> Iterator[Processes]:
    logs.mkdir(parents=True, exist_ok=True)
    group = Processes(logs, cwd)
    try:
        yield group
    finally:
        group.stop_all()
