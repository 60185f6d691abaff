"""The two Pendo credentials: names, where they come from, and the checks made when loaded.

Credentials are pasted from files and terminals, so surrounding whitespace (a trailing newline
from `kubectl create secret --from-file`, `echo` without -n, a CRLF .env file) is stripped.
A character that still cannot travel in an HTTP header is refused at once, by name and
position only: otherwise httpx/h11 would fail on the first request with the value in its error.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import INTEGRATION_KEY_HELP, TRACK_SECRET_HELP, PendoConfigError
from .secret import Secret

INTEGRATION_KEY = "integration_key"
TRACK_EVENT_SECRET = "track_event_secret"


@dataclass(frozen=True)
class Credential:
    """How one credential is named to the people who configure it."""

    name: str  # the PendoClient parameter
    label: str
    env_var: str
    help_text: str

    def described(self) -> str:
        return f"the {self.label} ({self.env_var})"


CREDENTIALS: dict[str, Credential] = {
    INTEGRATION_KEY: Credential(
        INTEGRATION_KEY, "integration key", "PENDO_INTEGRATION_KEY", INTEGRATION_KEY_HELP
    ),
    TRACK_EVENT_SECRET: Credential(
        TRACK_EVENT_SECRET,
        "Track Event shared secret",
        "PENDO_TRACK_EVENT_SECRET",
        TRACK_SECRET_HELP,
    ),
}


def load_credential(value: str | Secret | None, name: str) -> Secret | None:
    """The stripped credential, None when unset or blank; PendoConfigError if unusable.

    The error names the variable and a 1-based position in the value as given (leading
    whitespace counted), never the value or a part of it.
    """
    if value is None:
        return None
    raw = value.reveal() if isinstance(value, Secret) else str(value)
    text = raw.strip()
    if not text:
        return None
    leading = len(raw) - len(raw.lstrip())
    for position, char in enumerate(text, start=leading + 1):
        problem = _header_problem(char)
        if problem is not None:
            raise PendoConfigError(
                f"{CREDENTIALS[name].described()} contains {problem} at position {position}. "
                "Set it again without it (surrounding whitespace is removed automatically)."
            )
    return Secret(text)


def _header_problem(char: str) -> str | None:
    """What keeps `char` out of an HTTP header value sent by httpx (ASCII only, no controls)."""
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return "a control character"
    if code > 0x7F:
        return "a non-ASCII character"
    return None
