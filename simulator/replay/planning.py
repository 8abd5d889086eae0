"""Planning a replay: expanding a scenario into the outbox, overlapped with storing or sending.

Two ways. :func:`streamed` (replay at time scale 0 with a file outbox): a forked process expands
while this one stores each part and sends it at once, so sending starts with the first part and
planning takes the second core. :func:`prefetched` (otherwise): expansion runs a bounded number of
chunks ahead in a thread while the outbox stores (``sqlite3`` releases the GIL while it writes
pages), without holding more than about ``depth * chunk`` deliveries in memory.

Example::

    >>> list(prefetched(iter(range(5)), chunk=2))
    [0, 1, 2, 3, 4]
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar, cast

from d1sim.contracts.scenario.source import ScenarioError
from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery import terms
from d1sim.simulator.delivery.outbox import Outbox, StoredDelivery
from d1sim.simulator.errors import UsageError
from d1sim.simulator.lifeline import exit_with_parent

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


# Deliveries per hand-over from the planning process: one outbox transaction each.
HAND_OVER = 500
_FORK = "fork" in multiprocessing.get_all_start_methods()


def can_stream(outbox: Outbox) -> bool:
    """Whether a plan can be made in a process of its own while it is sent (a file outbox, fork)."""
    return _FORK and outbox.path is not None


def remaining(deliveries: Iterable[Delivery], after: int) -> Iterator[Delivery]:
    """The deliveries of a plan not stored yet: those after ``seq`` ``after`` (a plan is in seq order)."""
    return (d for d in deliveries if d.seq > after)


def streamed(outbox: Outbox, run_id: str, plan: Callable[[], Iterable[Delivery]],
             *, chunk: int = 1000) -> Generator[StoredDelivery | None, None, None]:
    """Send a run while it is planned: expand in a forked process, store here, yield what is owed.

    The planning process only expands (pure work, no outbox: an SQLite connection must not cross
    a fork), computes each delivery's search index text, and hands them over a pipe,
    ``HAND_OVER`` at a time; this generator stores each
    hand-over in one commit and then yields it, so every delivery is in the outbox before it is
    sent. ``None`` means "none yet, more to come". When the plan is complete the run becomes
    ready (or running). A run interrupted while planning resumes here: what it stored and still
    owes comes first, then the rest is planned again. Closing the generator stops the process.
    """
    stored = outbox.last_planned(run_id)
    planner = _Planner(plan, stored)
    try:
        read = -1
        while owed := outbox.owed_after(run_id, read, chunk):  # all planned before this call
            read = owed[-1].delivery.seq
            yield from owed
        while (part := planner.part()) is not _DONE:
            if part is None:
                yield None
            else:
                deliveries, texts = cast(_Part, part)
                yield from outbox.store_planned(run_id, deliveries, texts)
        outbox.finish_planning(run_id)
    finally:
        planner.close()


_DONE = object()
_Part = tuple[list[Delivery], list[str]]  # deliveries and their search index texts


class _Planner:
    """The planning process and its pipe, seen from the sender's side."""

    def __init__(self, plan: Callable[[], Iterable[Delivery]], after: int) -> None:
        context = multiprocessing.get_context("fork")
        self.reader, writer = context.Pipe(duplex=False)
        self.process = context.Process(target=_plan_into, args=(plan, after, writer, os.getpid()),
                                       name="d1sim-planner", daemon=True)
        self.process.start()
        writer.close()

    def part(self) -> _Part | object | None:
        """The next hand-over (deliveries and their search index texts), None if none is ready
        yet, or _DONE once the plan is complete."""
        if not self.reader.poll():
            return None
        try:
            message = self.reader.recv()
        except EOFError:
            self.process.join(1)
            raise UsageError(f"planning stopped unexpectedly (exit code {self.process.exitcode}); "
                             "nothing stored was lost: run the same command again to resume") from None
        if isinstance(message, str):
            raise UsageError(message)
        if message is None:
            return _DONE
        return [Delivery(*fields) for fields, _ in message], [text for _, text in message]

    def close(self) -> None:
        self.reader.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(5)


def _plan_into(plan: Callable[[], Iterable[Delivery]], after: int, writer: Connection, parent: int) -> None:
    """The planning process: expand, hand deliveries over in groups, then None (or an error text)."""
    exit_with_parent(parent)
    try:
        # Plain tuples (pickled several times faster), with the search index text computed here.
        batch: list[tuple[tuple[Any, ...], str]] = []
        for d in remaining(plan(), after):
            batch.append(((d.seq, d.due, d.body, d.card_ids, d.statuses, d.correlation_id, d.scenario,
                           d.key, d.fault), terms.tokens(d.card_ids, d.body)))
            if len(batch) == HAND_OVER:
                writer.send(batch)
                batch = []
        if batch:
            writer.send(batch)
        writer.send(None)
    except ScenarioError as exc:
        writer.send(str(exc))
    except Exception as exc:  # said by the sender, which stops the run (what is stored stays)
        writer.send(f"planning failed: {type(exc).__name__}: {exc}")
    finally:
        writer.close()
