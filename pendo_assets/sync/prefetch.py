"""Runs a producer one step ahead in a thread: the next chunk is read and planned while the
current one is being sent."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.1


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class Prefetched(Generic[T]):
    """Iterates `items` in a background thread, at most `depth` items ahead of its reader.

    `close()` (also on leaving a `with` block) stops the producer and closes `items` in the
    thread that ran it, so a streaming read ends its cursor there. An exception in the producer
    is raised in the reader, at the point the item would have come.
    """

    def __init__(self, items: Iterator[T], *, depth: int = 1, name: str = "pendo-prefetch") -> None:
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as error:  # handed to the reader, raised there
            self._put(_Raised(error))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def _put(self, item: object) -> bool:
        while not self._cancelled.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._cancelled.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
        self._thread.join()

    def __enter__(self) -> Prefetched[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
