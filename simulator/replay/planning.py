"""Planning a replay: expanding a scenario into the outbox, overlapped with storing or sending.

Two ways. :class:`Streamed` (replay at time scale 0 with a file outbox): the writer process
(:mod:`d1sim.simulator.replay.writer`) expands and stores each part while this process sends the
parts already stored, so sending starts with the first part, and the same process commits the
attempts: planning and SQLite take the second core. :func:`prefetched` (otherwise): expansion
runs a bounded number of chunks ahead in a thread while the outbox stores (``sqlite3`` releases
the GIL while it writes pages), without holding more than about ``depth * chunk`` deliveries in
memory.

Example::

    >>> list(prefetched(iter(range(5)), chunk=2))
    [0, 1, 2, 3, 4]
"""

from __future__ import annotations

import pickle
import queue
import threading
from collections.abc import Generator, Iterator
from itertools import islice
from typing import TypeVar, cast

from d1sim.contracts.scenario.source import ScenarioError
from d1sim.simulator.delivery.driver import Recorder
from d1sim.simulator.delivery.outbox import Outbox, StoredDelivery
from d1sim.simulator.errors import UsageError
from d1sim.simulator.replay.writer import DONE, HAND_OVER, Plan, Writer, remaining

__all__ = ["HAND_OVER", "Streamed", "can_stream", "prefetched", "remaining"]

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


def can_stream(outbox: Outbox) -> bool:
    """Whether a plan can be made in a process of its own while it is sent (a file outbox)."""
    return outbox.path is not None


class Streamed:
    """A run sent while it is planned: an iterator of what to send, and the run's recorder.

    Yields what the run already stored and still owes (a run interrupted while planning), then
    each part the writer process (:mod:`d1sim.simulator.replay.writer`) expands and stores, every
    delivery in the outbox before it is yielded; ``None`` means "none yet, more to come". The
    run becomes ready (or running) once its plan is complete. ``recorder`` commits the sender's
    attempts in that same process. ``plan`` must pickle (a module-level function or a
    ``functools.partial`` of one). Where no process can start, the plan is expanded in a thread
    here and stored by this process, and ``recorder`` is None. :meth:`close` lets the writer
    commit what it was handed and end.
    """

    def __init__(self, outbox: Outbox, run_id: str, plan: Plan, *, chunk: int = 1000) -> None:
        self.outbox, self.run_id, self.chunk = outbox, run_id, chunk
        self.after = outbox.last_planned(run_id)
        assert outbox.path is not None, "a streamed plan needs a file outbox"
        try:
            self.writer: Writer | None = Writer(outbox.path, run_id, plan, self.after)
        except (OSError, ValueError, TypeError, AttributeError, pickle.PicklingError):
            self.writer = None  # no interpreter to start, or a plan that cannot travel
        self.recorder: Recorder | None = self.writer
        self._items = self._stream(plan)

    def __iter__(self) -> Streamed:
        return self

    def __next__(self) -> StoredDelivery | None:
        return next(self._items)

    def close(self) -> None:
        self._items.close()
        if self.writer is not None:
            self.writer.close()

    def _stream(self, plan: Plan) -> Generator[StoredDelivery | None, None, None]:
        read = -1
        while owed := self.outbox.owed_after(self.run_id, read, self.chunk, upto=self.after):
            read = owed[-1].delivery.seq
            yield from owed
        if self.writer is None:
            yield from self._planned_here(plan)
            return
        while (part := self.writer.part()) is not DONE:
            if part is None:
                yield None
            else:
                yield from cast(list[StoredDelivery], part)

    def _planned_here(self, plan: Plan) -> Iterator[StoredDelivery]:
        try:
            for part in _batched(prefetched(remaining(plan(), self.after)), HAND_OVER):
                yield from self.outbox.store_planned(self.run_id, part)
        except ScenarioError as exc:
            raise UsageError(str(exc)) from None
        self.outbox.finish_planning(self.run_id)


def _batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while batch := list(islice(items, size)):
        yield batch
