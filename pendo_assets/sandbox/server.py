"""Running the sandbox in-process: uvicorn on a background thread, on a socket we bind.

Binding the socket ourselves means port 0 gives a free port with no race, and ``.url`` is
known before the first request. The thread installs no signal handlers (uvicorn skips them
off the main thread), so tests and notebooks keep their own Ctrl-C behaviour.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from pendo_assets.sandbox.app import build_app
from pendo_assets.sandbox.config import SandboxConfig
from pendo_assets.sandbox.faults import hide_dropped_connection_tracebacks

STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket; port 0 picks a free port."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _client_host(host: str) -> str:
    """The address a client should dial: wildcards become loopback, IPv6 gets brackets."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class SandboxServer:
    """A local Pendo sandbox served over real HTTP, for tests, demos and benchmarks.

    Use as a context manager (``with SandboxServer(cfg) as sandbox: ...``) or call
    ``start()``/``stop()``.
    """

    def __init__(
        self,
        config: SandboxConfig,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_level: str = "warning",
        access_log: bool = False,
    ) -> None:
        self.config = config
        self.host = host
        self._requested_port = port
        self._log_level = log_level
        self._access_log = access_log
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._port: int | None = None
        self._http: httpx.Client | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox server is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{_client_host(self.host)}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> SandboxServer:
        """Bind, serve on a daemon thread, and return once the sandbox answers HTTP."""
        if self.running:
            raise RuntimeError("the sandbox server is already running")
        sock = bind_socket(self.host, self._requested_port)
        self._socket = sock
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self.config),
            log_level=self._log_level,
            access_log=self._access_log,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        hide_dropped_connection_tracebacks()  # after uvicorn.Config configured logging
        self._server = uvicorn.Server(config)
        self._error = None
        self._thread = threading.Thread(
            target=self._serve, args=(self._server, sock), name="pendo-sandbox", daemon=True
        )
        self._thread.start()
        # Plain HTTP on loopback: skip loading CA certificates, which costs tens of ms a client.
        self._http = httpx.Client(base_url=self.url, timeout=10, verify=False)
        try:
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # uvicorn exits via SystemExit on startup failure
            self._error = exc

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"the sandbox server failed to start: {self._error!r}")
            if self._server is not None and self._server.started:
                try:
                    self._control().get("/sandbox/state?requests=false", timeout=1.0)
                    return
                except httpx.TransportError:
                    pass
            time.sleep(0.01)
        raise RuntimeError(f"the sandbox server did not answer within {STARTUP_TIMEOUT_SECONDS}s")

    def stop(self) -> None:
        """Shut down, join the thread and release the port. Safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT_SECONDS)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(SHUTDOWN_TIMEOUT_SECONDS)
            if self._thread.is_alive():
                raise RuntimeError("the sandbox server thread did not stop")
        if self._socket is not None:
            self._socket.close()
        if self._http is not None:
            self._http.close()
        self._http = None
        self._server = None
        self._thread = None
        self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # control routes, for tests ------------------------------------------------------------
    def state(self, requests: bool = True, timings: bool = False) -> dict[str, Any]:
        """``GET /sandbox/state``: metadata, stored events, counters and (optionally) the log.

        With ``timings`` each log entry also has ``received_at``: ``time.monotonic()`` when the
        request arrived (comparable with the caller's clock when the sandbox runs in-process).
        """
        params = {"requests": str(requests).lower(), "timings": str(timings).lower()}
        response = self._control().get("/sandbox/state", params=params)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """``POST /sandbox/reset``: forget all state, the pacing memory and queued faults."""
        self._control().post("/sandbox/reset").raise_for_status()

    def script_faults(self, responses: list[dict[str, Any]]) -> None:
        """``POST /sandbox/faults``: queue answers for the next Pendo API requests.

        Entries as in ``faults``: ``{"status": 503}``, ``{"drop": True}``, optionally with
        ``"after_effect": True`` to apply the request before losing its answer.
        """
        self._control().post("/sandbox/faults", json={"responses": responses}).raise_for_status()

    def _control(self) -> httpx.Client:
        if self._http is None:
            raise RuntimeError("the sandbox server is not started")
        return self._http
