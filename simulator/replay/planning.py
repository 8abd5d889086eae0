"""Planning in two threads: a scenario expands in one while the outbox stores what is ready in the other.

Expansion is Python work; storing is mostly SQLite writing pages, during which ``sqlite3``
releases the GIL. Expanding ahead in a background thread, a bounded number of chunks at a time,
lets the two overlap when a core is free (see BENCHMARKS.md, "Planning") without holding more
than about ``depth * chunk`` deliveries in memory.

Example::

    >>> list(prefetched(iter(range(5)), chunk=2))
    [0, 1, 2, 3, 4]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()
# How often a blocked producer looks whether its consumer has gone away.
_POLL_SECONDS = 0.1


def prefetched(items: Iterator[T], *, chunk: int = 250, depth: int = 4) -> Iterator[T]:
    """Yield ``items`` in order while a background thread computes up to ``depth`` chunks ahead.

    An exception raised by ``items`` is raised here, at the point it was reached; closing or
    abandoning this iterator stops the background thread after its current chunk.
    """
    ready: queue.Queue[object] = queue.Queue(depth)
    gone = threading.Event()

    def hand_over(value: object) -> bool:
        while not gone.is_set():
            try:
                ready.put(value, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            batch: list[T] = []
            for item in items:
                batch.append(item)
                if len(batch) == chunk:
                    if not hand_over(batch):
                        return  # the consumer has gone
                    batch = []
            if hand_over(batch):
                hand_over(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            hand_over(exc)

    worker = threading.Thread(target=produce, name="d1sim-planner", daemon=True)
    worker.start()
    try:
        while (got := ready.get()) is not _END:
            if isinstance(got, BaseException):
                raise got
            yield from got  # type: ignore[misc]
    finally:
        gone.set()
        worker.join(timeout=5)
