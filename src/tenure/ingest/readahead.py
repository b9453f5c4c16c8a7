"""Read ahead on the second core: the next batches are read and parsed while this one is written.

Reading a file and parsing it column-wise (Arrow releases the GIL) overlaps with the database's
write of the batch before, so an import uses both cores. The worker touches no database: only the
file and in-memory lookups loaded before it starts.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead(Generic[Item, Result]):
    """Yields ``(item, work(item))`` in order, computed up to ``depth`` items ahead."""

    def __init__(
        self, items: Iterator[Item], work: Callable[[Item], Result], depth: int = 2
    ) -> None:
        self.items = items
        self.work = work
        self.ready: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.stopping = threading.Event()
        self.worker = threading.Thread(target=self._produce, name="tenure-read-ahead", daemon=True)

    def _produce(self) -> None:
        try:
            for item in self.items:
                if self.stopping.is_set():
                    return
                self._put((item, self.work(item)))
            self._put(_DONE)
        except BaseException as error:  # handed to the consumer, which raises it
            self._put(_Failure(error))

    def _put(self, value: object) -> None:
        while not self.stopping.is_set():
            try:
                self.ready.put(value, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[tuple[Item, Result]]:
        self.worker.start()
        try:
            while True:
                value = self.ready.get()
                if value is _DONE:
                    return
                if isinstance(value, _Failure):
                    raise value.error
                yield value  # type: ignore[misc]
        finally:
            self.stopping.set()
            self.worker.join()
