"""HTTP routes of the sandbox: Pendo's write API plus ``/sandbox/*`` control routes.

Every request outside ``/sandbox/`` is treated as a Pendo API request: it is counted, delayed
by ``latency_ms``, possibly answered by an injected fault (instead of being handled, or after
it was handled and applied: a lost answer), and logged (with credentials masked).
The Pendo rules themselves live in ``rules``, ``metadata`` and ``track``.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Match, Route

from pendo_assets.sandbox.config import SandboxConfig
from pendo_assets.sandbox.faults import DroppedResponse, FaultInjector, parse_scripted
from pendo_assets.sandbox.metadata import schema, write_batch
from pendo_assets.sandbox.redaction import CREDENTIAL_HEADER, LoggedRequest
from pendo_assets.sandbox.rules import GROUPS, ID_KEYS, parse_json, track_event_error
from pendo_assets.sandbox.store import PACING_SECONDS, SandboxStore
from pendo_assets.sandbox.track import accept_event

Handler = Callable[[Request, bytes], Awaitable[Response]]
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


class _Sandbox:
    """The state and behaviour behind one app; routes are bound to its methods."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = SandboxStore(config.request_log_limit)
        self.faults = FaultInjector(
            config.fault_rate,
            config.retry_after_seconds,
            config.seed,
            lost_answer_rate=config.lost_answer_rate,
        )
        self.pendo_routes: list[Route] = []

    # the pipeline every Pendo API request goes through ---------------------------------------
    def pendo(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            received_at = time.monotonic()  # arrival, before the body and any latency
            self.store.counters.requests += 1
            try:
                # The body is read first, so a client that gives up during the latency
                # does not undo the request: as with a real server, a timeout is no proof
                # that nothing happened.
                body = await request.body()
            except ClientDisconnect:
                self._record(request, b"", None, received_at)
                return Response(status_code=400)  # nobody is listening any more
            if self.config.latency_ms:
                await asyncio.sleep(self.config.latency_ms / 1000)
            fault = self.faults.next_fault(request.url.path)
            if fault is not None and not fault.after_effect:
                self.store.counters.faults_injected += 1
                response = fault.response()
            else:
                response = await handler(request, body)
                if fault is not None:  # applied; now the answer is lost
                    self.store.counters.faults_injected += 1
                    self.store.counters.answers_lost += 1
                    response = fault.response()
            dropped = isinstance(response, DroppedResponse)
            self._record(request, body, None if dropped else response.status_code, received_at)
            return response

        return endpoint

    def _record(
        self, request: Request, body: bytes, status: int | None, received_at: float
    ) -> None:
        """Count the status and log the request; ``status`` is None when nothing was answered.

        ``received_at`` (``time.monotonic()`` at arrival) is served only with ``?timings=true``.
        """
        if status is not None:
            self.store.counters.responses_by_status[status] += 1
        logged = LoggedRequest(
            method=request.method,
            path=request.url.path,
            query_string=request.scope["query_string"],
            raw_headers=request.headers.raw,
            body=body,
            status=status,
            received_at=received_at,
            integration_key=self.config.integration_key,
            track_event_secret=self.config.track_event_secret,
        )
        self.store.log_request(logged)

    def _refuse_credential(self, request: Request, expected: str, name: str) -> Response | None:
        """401 without the header, 403 with the wrong credential, None when it matches."""
        value = request.headers.get(CREDENTIAL_HEADER)
        if not value:
            return _message(401, f"missing {CREDENTIAL_HEADER} header")
        if not hmac.compare_digest(value.encode(), expected.encode()):
            return _message(
                403, f"the {CREDENTIAL_HEADER} value is not a valid {name} for this endpoint"
            )
        return None

    # Pendo API handlers -----------------------------------------------------------------------
    async def metadata_value(self, request: Request, body: bytes) -> Response:
        create = request.query_params.get("create", "").lower() == "true"
        return self._metadata_write(request, body, request.path_params["group"], create)

    async def metadata_bulk(self, request: Request, body: bytes) -> Response:
        return self._metadata_write(request, body, "custom", True)

    def _metadata_write(self, request: Request, body: bytes, group: str, create: bool) -> Response:
        refused = self._refuse_credential(request, self.config.integration_key, "integration key")
        if refused is not None:
            return refused
        kind = request.path_params["kind"]
        if kind not in ID_KEYS or group not in GROUPS:
            return _message(404, f"no metadata endpoint for kind '{kind}' and group '{group}'")
        records, problem = parse_json(body)
        if problem is not None:
            return _message(400, problem)
        if not isinstance(records, list):
            return _message(400, "body must be a JSON array of records")
        if len(records) > self.config.max_batch:
            return _message(
                413, f"too many records: {len(records)} (at most {self.config.max_batch})"
            )
        return JSONResponse(write_batch(self.store, self.config, kind, group, records, create))

    async def metadata_schema(self, request: Request, body: bytes) -> Response:
        refused = self._refuse_credential(request, self.config.integration_key, "integration key")
        if refused is not None:
            return refused
        kind = request.path_params["kind"]
        if kind not in ID_KEYS:
            return _message(404, f"no metadata schema for kind '{kind}'")
        return JSONResponse(schema(self.config, kind))

    async def track(self, request: Request, body: bytes) -> Response:
        refused = self._refuse_credential(
            request, self.config.track_event_secret, "track event secret"
        )
        if refused is not None:
            return refused
        event, problem = parse_json(body)
        if problem is None:
            problem = track_event_error(event)
        if problem is not None:
            return _message(400, problem)
        outcome = accept_event(self.store, event, time.monotonic())
        if outcome.paced:
            return _message(
                429,
                "too many events for this visitor: at most one per second",
                headers={"Retry-After": str(int(PACING_SECONDS))},
            )
        return PlainTextResponse("OK")

    async def no_such_endpoint(self, request: Request, body: bytes) -> Response:
        for route in self.pendo_routes:
            if route.matches(request.scope)[0] is Match.PARTIAL:
                return _message(405, f"{request.method} is not allowed on {request.url.path}")
        return _message(404, f"no such endpoint: {request.method} {request.url.path}")

    # control routes (no credential, not counted) ----------------------------------------------
    async def state(self, request: Request) -> Response:
        flag = request.query_params.get("requests", "true").lower()
        include = flag not in ("false", "0", "no")
        timings = request.query_params.get("timings", "false").lower() in ("true", "1", "yes")
        return JSONResponse(self.store.snapshot(include_requests=include, include_timings=timings))

    async def reset(self, request: Request) -> Response:
        self.store.reset()
        self.faults.reset()
        return JSONResponse({"reset": True})

    async def script_faults(self, request: Request) -> Response:
        payload, _ = parse_json(await request.body())
        try:
            faults = parse_scripted(payload)
        except ValueError as exc:
            return _message(400, str(exc))
        return JSONResponse({"pending": self.faults.script(faults)})

    async def clear_faults(self, request: Request) -> Response:
        self.faults.clear_queue()
        return JSONResponse({"pending": 0})

    async def unknown_control_route(self, request: Request) -> Response:
        return _message(404, f"no such sandbox route: {request.method} {request.url.path}")


def build_app(config: SandboxConfig) -> Starlette:
    """A fresh sandbox app with its own empty state."""
    sandbox = _Sandbox(config)
    pendo = sandbox.pendo
    # Track first: one request per event makes it the hottest route, and routes are tried in
    # order. No path matches both /data/track and a metadata route, so the order changes nothing
    # else (likewise for the control routes, all under /sandbox/, tried after these).
    sandbox.pendo_routes = [
        Route("/data/track", pendo(sandbox.track), methods=["POST"]),
        Route("/api/v1/metadata/schema/{kind}", pendo(sandbox.metadata_schema), methods=["GET"]),
        Route(
            "/api/v1/metadata/{kind}/{group}/value",
            pendo(sandbox.metadata_value),
            methods=["POST"],
        ),
        Route("/api/v1/metadata/{kind}/bulk", pendo(sandbox.metadata_bulk), methods=["POST"]),
    ]
    control_routes = [
        Route("/sandbox/state", sandbox.state, methods=["GET"]),
        Route("/sandbox/reset", sandbox.reset, methods=["POST"]),
        Route("/sandbox/faults", sandbox.script_faults, methods=["POST"]),
        Route("/sandbox/faults", sandbox.clear_faults, methods=["DELETE"]),
        Route("/sandbox/{rest:path}", sandbox.unknown_control_route, methods=_ALL_METHODS),
    ]
    fallback = Route("/{rest:path}", pendo(sandbox.no_such_endpoint), methods=_ALL_METHODS)
    app = Starlette(routes=[*sandbox.pendo_routes, *control_routes, fallback])
    app.state.sandbox = sandbox
    return app
