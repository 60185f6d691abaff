"""A local Pendo sandbox: a real HTTP server that behaves like Pendo's write API.

Used by the demo, the tests and the benchmarks, and by users trying a mapping before they
point it at Pendo. Run it with ``python -m pendo_assets.sandbox --port 8787 --config FILE``
or in-process with ``SandboxServer``.
"""

from pendo_assets.sandbox.config import SandboxConfig
from pendo_assets.sandbox.server import SandboxServer

__all__ = ["SandboxConfig", "SandboxServer"]
