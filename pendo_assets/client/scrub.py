"""Removing credentials from text built out of other libraries' exceptions.

httpx and h11 put header values into some of their messages (an illegal header value, a
proxy's error). Anything the client raises or logs from such text passes through here first.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"


class Scrubber:
    """Replaces every known credential, in every spelling an exception may use, with `***`."""

    def __init__(self, credentials: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for value in credentials:
            if not value:
                continue
            for variant in (value, value.strip()):
                if variant:
                    forms.add(variant)
                    forms.add(repr(variant)[1:-1])  # as inside a str repr: '\n' -> '\\n'
                    forms.add(repr(variant.encode("utf-8", "replace"))[2:-1])  # as in b'...'
        # Longest first, so a raw value is masked whole before its stripped part is looked at.
        self._forms = sorted((form for form in forms if form), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, MASK)
        return text
