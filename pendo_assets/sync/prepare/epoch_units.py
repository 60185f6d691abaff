"""Epoch numbers of any common unit, told apart by magnitude, as milliseconds.

Warehouses store instants as epoch seconds, milliseconds (most event pipelines), microseconds
(Kafka sinks, BigQuery and Snowflake exports) or nanoseconds. The bands do not overlap for any
instant between 1973 and 5138, so one rule serves partition columns and event timestamps alike:

| magnitude            | unit         |
|----------------------|--------------|
| below 1e11           | seconds      |
| 1e11 up to 1e14      | milliseconds |
| 1e14 up to 1e17      | microseconds |
| 1e17 up to 1e20      | nanoseconds  |
| 1e20 and above       | none: not an instant |
"""

from __future__ import annotations

import numpy as np

# (upper bound of the band, milliseconds per unit)
BANDS: tuple[tuple[float, float], ...] = (
    (1e11, 1000.0),  # seconds
    (1e14, 1.0),  # milliseconds
    (1e17, 1e-3),  # microseconds
    (1e20, 1e-6),  # nanoseconds
)
UNIT_NAMES: tuple[str, ...] = ("seconds", "milliseconds", "microseconds", "nanoseconds")


def ms_per_unit(values: np.ndarray) -> np.ndarray:
    """Per value, milliseconds per unit of its band; NaN where no band fits (or not finite)."""
    magnitude = np.abs(np.asarray(values, dtype="float64"))
    factor = np.full(magnitude.shape, np.nan)
    lower = 0.0
    for upper, per_unit in BANDS:
        factor[(magnitude >= lower) & (magnitude < upper)] = per_unit
        lower = upper
    return factor


def to_epoch_ms(values: np.ndarray) -> np.ndarray:
    """Epoch numbers of any band as float milliseconds; NaN where no band fits."""
    numbers = np.asarray(values, dtype="float64")
    return numbers * ms_per_unit(numbers)


def unit_name(value: float) -> str | None:
    """The unit a single epoch number is read in, or None when it fits no band."""
    magnitude = abs(value)
    for (upper, _), name in zip(BANDS, UNIT_NAMES, strict=True):
        if magnitude < upper:
            return name
    return None
