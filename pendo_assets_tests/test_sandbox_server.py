"""Running the sandbox: in-process with SandboxServer, and as `python -m pendo_assets.sandbox`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pendo_assets.sandbox import SandboxConfig, SandboxServer

REPO_ROOT = Path(__file__).resolve().parents[1]


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` (SO_REUSEADDR, as servers do)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_url_and_port_name_the_loopback_address(sandbox: SandboxServer) -> None:
    assert sandbox.url == f"http://127.0.0.1:{sandbox.port}"
    assert sandbox.port > 0
    assert httpx.get(f"{sandbox.url}/sandbox/state").status_code == 200


def test_stop_frees_the_port(sandbox_config: SandboxConfig) -> None:
    server = SandboxServer(sandbox_config).start()
    port = server.port
    assert not port_is_free(port)
    server.stop()
    assert not server.running
    assert port_is_free(port)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/sandbox/state")


def test_context_manager_starts_and_stops(sandbox_config: SandboxConfig) -> None:
    with SandboxServer(sandbox_config) as server:
        assert server.running
        assert server.state(requests=False)["events"] == []
        port = server.port
    assert not server.running
    assert port_is_free(port)


def test_a_busy_port_is_an_error_at_start(
    sandbox: SandboxServer, sandbox_config: SandboxConfig
) -> None:
    with pytest.raises(OSError):
        SandboxServer(sandbox_config, port=sandbox.port).start()


def test_each_server_has_its_own_state(
    sandbox: SandboxServer, sandbox_config: SandboxConfig, integration_key: str
) -> None:
    with SandboxServer(sandbox_config) as other:
        httpx.post(
            f"{other.url}/api/v1/metadata/visitor/custom/value?create=true",
            json=[{"visitorId": "v-elsewhere", "values": {}}],
            headers={"x-pendo-integration-key": integration_key},
        )
        assert list(other.state()["metadata"]["visitor"]) == ["v-elsewhere"]
    assert sandbox.state()["metadata"]["visitor"] == {}


def _write_config(tmp_path: Path, key: str, secret: str, extra: str = "") -> Path:
    path = tmp_path / "sandbox.yaml"
    path.write_text(
        f'integration_key: "{key}"\ntrack_event_secret: "{secret}"\n'
        "fields:\n  visitor: {plan: string}\n" + extra,
        encoding="utf-8",
    )
    return path


def _run_cli(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "pendo_assets.sandbox", *args],
        cwd=REPO_ROOT,
        env=env,
        text=True,
        **kwargs,
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_cli_serves_the_config_and_stops_cleanly_on_a_signal(
    tmp_path: Path, integration_key: str, track_event_secret: str, stop_signal: signal.Signals
) -> None:
    port = free_port()
    config = _write_config(tmp_path, integration_key, track_event_secret)
    log_path = tmp_path / "cli.log"
    with log_path.open("w") as log:
        process = _run_cli(
            "--port", str(port), "--config", str(config), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            schema = None
            deadline = time.monotonic() + 20
            while schema is None and process.poll() is None and time.monotonic() < deadline:
                try:
                    schema = httpx.get(
                        f"http://127.0.0.1:{port}/api/v1/metadata/schema/visitor",
                        headers={"x-pendo-integration-key": integration_key},
                    )
                except httpx.TransportError:
                    time.sleep(0.05)
            assert schema is not None, log_path.read_text()
            assert schema.json()["custom"]["plan"]["Type"] == "string"
            process.send_signal(stop_signal)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    output = log_path.read_text()
    assert f"listening on http://127.0.0.1:{port}" in output
    assert "stopped" in output
    assert integration_key not in output and track_event_secret not in output
    assert port_is_free(port)


def test_cli_refuses_an_invalid_config_naming_the_key(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "key-a", "secret-b", extra="fault_rate: 1.5\n")
    process = _run_cli("--port", str(free_port()), "--config", str(config), stderr=subprocess.PIPE)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "fault_rate" in stderr
