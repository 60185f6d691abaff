"""Payload hashes of a chunk as one run of bytes, `HASH_BYTES` each, in key order.

One `bytes` per chunk instead of a hex string per row: hashing writes the digests as they come
(no hex spelling), the comparison and the state write hand the run to the database as it is,
and picking the rows of one batch is a single numpy take, not a Python step per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pendo_assets.sync.record.state_tables import HASH_BYTES

_HEX = 2 * HASH_BYTES
_ONE = np.dtype((np.void, HASH_BYTES))

Hashes = bytes | Sequence[str]  # packed, or one hex spelling per key


def packed(hashes: Hashes, count: int) -> bytes:
    """`count` hashes as one run; hex spellings are converted, anything else is refused (the
    statements cut the run at fixed offsets)."""
    if isinstance(hashes, bytes):
        if len(hashes) != HASH_BYTES * count:
            raise ValueError(f"expected {count} payload hashes of {HASH_BYTES} bytes each")
        return hashes
    if len(hashes) != count:
        raise ValueError(f"expected {count} payload hashes, got {len(hashes)}")
    try:
        joined = bytes.fromhex("".join(hashes)) if set(map(len, hashes)) <= {_HEX} else b""
    except ValueError:
        joined = b""
    if len(joined) != HASH_BYTES * count:  # fromhex skips whitespace
        raise ValueError(f"payload hashes must be {_HEX} hex characters each")
    return joined


def pick(run: bytes, indexes: Sequence[int]) -> bytes:
    """The hashes at `indexes`, in that order, as a run of their own."""
    return np.frombuffer(run, dtype=_ONE)[np.asarray(indexes, dtype=np.intp)].tobytes()


def hex_list(run: bytes) -> list[str]:
    """Each hash of the run spelled in hex, as the state view shows it."""
    return [run[i : i + HASH_BYTES].hex() for i in range(0, len(run), HASH_BYTES)]
