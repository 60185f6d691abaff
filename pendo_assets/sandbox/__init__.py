"""A local Pendo sandbox: a real HTTP server that behaves like Pendo's write API.

Used by the demo, the tests and the benchmarks, and by users trying a mapping before they
point it at Pendo. Run it with ``python -m pendo_assets.sandbox --port 8787 --config FILE``
or in-process with ``SandboxServer``.

Failures can be injected, scripted or at random (see ``faults``): an error status or dropped
connection instead of handling a request, or a lost answer (``after_effect``) after the request
was applied, as when Pendo stores an event but the response never reaches the client.
"""

from pendo_assets.sandbox.config import SandboxConfig
from pendo_assets.sandbox.server import SandboxServer

__all__ = ["SandboxConfig", "SandboxServer"]
