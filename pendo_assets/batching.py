"""Cutting work into batches: the one helper the client and the sync engine share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")


def chunks(items: Iterable[T] | Sequence[T], size: int) -> Iterator[Any]:
    """Batches of at most `size`: slices of a sequence or array (views, no copies), lists of
    any other iterable (read lazily, never materialised whole)."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    if hasattr(items, "__getitem__") and hasattr(items, "__len__"):
        for start in range(0, len(items), size):
            yield items[start : start + size]  # type: ignore[index]
        return
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
