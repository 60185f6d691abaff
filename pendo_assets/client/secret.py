"""A credential that cannot leak through repr, str, logging or exception text."""

from __future__ import annotations


class Secret:
    """Holds a credential; only `reveal()` gives it back, when a request needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = str(value)

    @classmethod
    def optional(cls, value: str | Secret | None) -> Secret | None:
        """Wrap a value that may be absent or blank (an unset environment variable)."""
        if value is None:
            return None
        secret = value if isinstance(value, Secret) else cls(value)
        return secret if secret.reveal().strip() else None

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Secret values are not picklable; pass them through configuration.")
