"""Errors the Pendo client raises. Their messages never contain a credential."""

from __future__ import annotations

INTEGRATION_KEY_HELP = (
    "Verify your Integration Key in Pendo > Settings > Subscription Settings > App Details. "
    "Ensure the key has write permissions and has not been regenerated since configuration."
)
TRACK_SECRET_HELP = (
    "Find the Track Event shared secret in Pendo > Settings > Subscription Settings > "
    "Applications > (your application) > App Details > Basic settings, "
    "'Track Event shared secret' (click Show). It is not the integration key."
)


class PendoError(Exception):
    """Base class of every error the client raises."""


class PendoConfigError(PendoError, ValueError):
    """The client was configured in a way that cannot work (unknown region, missing credential)."""


class MissingCredentialError(PendoConfigError):
    """A call needs a credential that was not supplied."""


class PendoAuthError(PendoError):
    """Pendo refused the credential: nothing else will succeed, so the whole sync stops."""

    def __init__(self, message: str, *, status: int, credential: str) -> None:
        super().__init__(message)
        self.status = status
        self.credential = credential


class PendoUnavailableError(PendoError):
    """Pendo kept failing transiently until the retry budget ran out."""

    def __init__(self, message: str, *, status: int | None, attempts: int) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class PendoRequestError(PendoError):
    """A read (such as the schema) got a non-retryable error answer."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class PendoInDoubtError(PendoError):
    """A request that is unsafe to repeat may have been applied, but its answer was lost.

    Raised instead of retrying a non-idempotent request (a track event): resending could
    record it twice. `problem` says what went wrong, without any credential.
    """

    def __init__(
        self,
        message: str,
        *,
        problem: str,
        method: str,
        path: str,
        status: int | None,
        attempts: int,
    ) -> None:
        super().__init__(message)
        self.problem = problem
        self.method = method
        self.path = path
        self.status = status
        self.attempts = attempts
