"""A printable name for where requests go: the base URL and a one-way credential fingerprint.

Callers remember what they delivered per destination, so a changed region, base URL or key
(a different Pendo subscription) must give a different name, and the name must be safe to
store and print: the credential appears only as a salted hash prefix.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit

from .secret import Secret

DOMAIN_PREFIX = b"pendo-assets/destination/v1\0"
FINGERPRINT_HEX_CHARS = 16
MAX_LENGTH = 300
UNSET = "none"
_URL_HEAD_CHARS = 200


def fingerprint(credential: Secret | None) -> str:
    """First 16 hex chars of sha256(domain prefix + stripped credential); "none" when unset."""
    if credential is None:
        return UNSET
    digest = hashlib.sha256(DOMAIN_PREFIX + credential.reveal().strip().encode("utf-8"))
    return digest.hexdigest()[:FINGERPRINT_HEX_CHARS]


def destination_id(base_url: str, credential: Secret | None) -> str:
    """`<base URL>#<fingerprint>`, at most 300 printable characters."""
    shown = _without_userinfo(base_url)
    if len(shown) > _URL_HEAD_CHARS or not (shown.isascii() and shown.isprintable()):
        # Still stable and distinct: a readable head plus a hash of the whole URL.
        head = "".join(c if c.isascii() and c.isprintable() else "?" for c in shown)
        digest = hashlib.sha256(base_url.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        shown = f"{head[:_URL_HEAD_CHARS]}~{digest}"
    return f"{shown}#{fingerprint(credential)}"  # at most 200 + 1 + 16 + 1 + 16 characters


def _without_userinfo(base_url: str) -> str:
    """The URL with any `user:password@` removed: a proxy password is no part of the name."""
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return base_url
    if "@" not in parts.netloc:
        return base_url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))
