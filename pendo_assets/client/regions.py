"""Pendo regions and the hosts that serve them.

A key works only in its own region, so the region decides the host of every call; a base-URL
override replaces it for proxies, the local sandbox and tests.
"""

from __future__ import annotations

from .errors import PendoConfigError

REGION_HOSTS: dict[str, str] = {
    "us": "https://app.pendo.io",
    "us1": "https://us1.app.pendo.io",
    "eu": "https://app.eu.pendo.io",
    "jp": "https://app.jpn.pendo.io",
    "au": "https://app.au.pendo.io",
}
DEFAULT_REGION = "us"


def normalize_region(region: str | None) -> str:
    """Return the canonical region name, or raise an error that lists the valid ones."""
    name = (region or DEFAULT_REGION).strip().lower()
    if name not in REGION_HOSTS:
        valid = ", ".join(REGION_HOSTS)
        raise PendoConfigError(f"Unknown Pendo region {region!r}; valid regions are: {valid}.")
    return name


def resolve_base_url(region: str | None, base_url: str | None = None) -> str:
    """The scheme and host every call goes to: the override when given, else the region's host."""
    name = normalize_region(region)
    if base_url:
        if not base_url.startswith(("http://", "https://")):
            raise PendoConfigError(
                f"Pendo base URL {base_url!r} must start with http:// or https://."
            )
        return base_url.rstrip("/")
    return REGION_HOSTS[name]
