"""The Pendo client: httpx, regions, credentials, retries and rate limits. No Dagster, no pandas."""

from .client import PendoClient
from .errors import (
    MissingCredentialError,
    PendoAuthError,
    PendoConfigError,
    PendoError,
    PendoInDoubtError,
    PendoRequestError,
    PendoUnavailableError,
)
from .metadata import NOT_FOUND_REASON
from .models import (
    AcceptedRecords,
    EncodedRecords,
    FailureKind,
    FieldSchema,
    MetadataRecord,
    MetadataSchema,
    RecordResult,
    TrackEvent,
)
from .regions import REGION_HOSTS, normalize_region, resolve_base_url
from .retry import RetryPolicy, parse_retry_after
from .secret import Secret
from .stats import StatsSnapshot

__all__ = [
    "NOT_FOUND_REASON",
    "REGION_HOSTS",
    "AcceptedRecords",
    "EncodedRecords",
    "FailureKind",
    "FieldSchema",
    "MetadataRecord",
    "MetadataSchema",
    "MissingCredentialError",
    "PendoAuthError",
    "PendoClient",
    "PendoConfigError",
    "PendoError",
    "PendoInDoubtError",
    "PendoRequestError",
    "PendoUnavailableError",
    "RecordResult",
    "RetryPolicy",
    "Secret",
    "StatsSnapshot",
    "TrackEvent",
    "normalize_region",
    "parse_retry_after",
    "resolve_base_url",
]
