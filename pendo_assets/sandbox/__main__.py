"""``python -m pendo_assets.sandbox --port PORT --config FILE [--host HOST]``.

Serves until Ctrl-C or SIGTERM, then shuts down cleanly and exits 0. Binds loopback unless
``--host`` says otherwise: the sandbox has no real security and should not face a network.
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from pendo_assets.sandbox.config import SandboxConfig
from pendo_assets.sandbox.server import SandboxServer

logger = logging.getLogger("pendo_assets.sandbox")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pendo_assets.sandbox",
        description="Run a local Pendo sandbox that behaves like Pendo's write API.",
    )
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free)")
    parser.add_argument("--config", type=Path, required=True, help="sandbox YAML config file")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the start-up probe is not news
    try:
        config = SandboxConfig.from_yaml(args.config)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    server = SandboxServer(
        config, host=args.host, port=args.port, log_level="info", access_log=True
    )
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        logger.error("could not start the Pendo sandbox on %s:%s: %s", args.host, args.port, exc)
        return 1
    # Start-up's objects (modules, the app) live as long as the process. Frozen, they are
    # left out of the collector's full collections, which a stream of large batches sets off
    # dozens of times a million records (measured: a tenth of the sandbox's CPU). Only here,
    # in the sandbox's own process: an in-process SandboxServer leaves its host's GC alone.
    gc.freeze()
    bound = "" if args.host in ("127.0.0.1", "localhost", "::1") else f", bound to {args.host}"
    logger.info("Pendo sandbox listening on %s%s (config: %s)", server.url, bound, args.config)
    try:
        while not stop.wait(0.5):
            if not server.running:
                logger.error("the Pendo sandbox stopped unexpectedly")
                return 1
    finally:
        server.stop()
    logger.info("Pendo sandbox stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
