"""The Pendo sandbox in its own process, so its work never shares a GIL with the code measured."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

STARTUP_SECONDS = 30.0
_LISTENING = re.compile(r"listening on (http://\S+)")


class SandboxProcess:
    """A running `python -m pendo_assets.sandbox`: its URL and its control routes."""

    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=120)

    def reset(self) -> None:
        """Forget all records, events and counters: each measured run starts from zero."""
        self._http.post("/sandbox/reset").raise_for_status()

    def counters(self) -> dict[str, Any]:
        """The sandbox's counters. The state route copies every stored record, so call it only
        while the sandbox holds few (after a reset and a small run)."""
        response = self._http.get("/sandbox/state", params={"requests": "false"})
        response.raise_for_status()
        return response.json()["counters"]

    def peak_rss_mib(self) -> float:
        """The sandbox's own high-water mark (VmHWM), to show it stayed flat."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        return kib / 1024

    def cpu_seconds(self) -> float:
        """CPU the sandbox has used so far (user + system), to show what the stand-in itself
        takes from the machine the measured command shares with it."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self._http.close()


def _wait_for_url(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        found = _LISTENING.search(log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited at start:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"the sandbox did not start within {STARTUP_SECONDS}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the sandbox shuts down cleanly on it), then SIGKILL its own session if stuck."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(20)


@contextlib.contextmanager
def sandbox_process(config: dict[str, Any], workdir: Path) -> Iterator[SandboxProcess]:
    """Start the sandbox on a free port; it is stopped on the way out, errors included."""
    config_file = workdir / "sandbox.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log = workdir / "sandbox.log"
    command = [sys.executable, "-m", "pendo_assets.sandbox", "--port", "0"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--config", str(config_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a stuck one can be killed alone
        )
    sandbox: SandboxProcess | None = None
    try:
        sandbox = SandboxProcess(process, _wait_for_url(process, log))
        yield sandbox
    finally:
        if sandbox is not None:
            sandbox.close()
        _stop(process)
