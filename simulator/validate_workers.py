"""Worker processes for ``d1sim validate``: each checks the chunks it is sent, in order.

A worker has a pipe of its own: the main process sends it chunks and receives their results
straight from the pipe, in the order it sent them. No thread in the main process and no shared
queue: a result is there as soon as the worker wrote it, and a worker never waits for a thread
of the main process to hand it work. (The worker sends from a thread of its own, so that it goes
on with the next chunk while the main process is not reading yet.)

A worker that dies is noticed at once (its pipe ends, its sentinel fires): :meth:`Worker.receive`
raises :class:`WorkerGone` instead of waiting. A chunk the worker could not check (an
exception) comes back as None, for the main process to check itself, and fail there as it would
with ``--jobs 1``.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections import deque
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext

from d1sim.simulator.validate.chunks import Chunk, ChunkResult, check_chunk

STOP_SECONDS = 5.0  # how long a stopping worker may take to finish its chunk before it is killed


class WorkerGone(Exception):
    """A worker process ended before it sent the result of a chunk it was given."""


class Worker:
    """One worker process, the pipe to it, and the chunks it was sent and has not answered."""

    def __init__(self, context: BaseContext, number: int, strict: bool, parent: int | None) -> None:
        ours, theirs = context.Pipe()
        self.process = context.Process(  # type: ignore[attr-defined]
            target=_serve,
            args=(theirs, strict, parent),
            name=f"d1sim-validate-{number}",
            daemon=True,
        )
        self.process.start()
        theirs.close()  # the worker's end must live in the worker only, or its death goes unseen
        self.conn: Connection = ours
        self.pending: deque[Chunk] = deque()

    def send(self, chunk: Chunk) -> None:
        """Give the worker one more chunk (it checks them in order).

        Raises:
            WorkerGone: the worker has ended.
        """
        try:
            self.conn.send(chunk)
        except OSError as exc:
            raise WorkerGone(f"{self.process.name} cannot take work: {exc}") from None
        self.pending.append(chunk)

    def ready(self) -> bool:
        """Whether :meth:`receive` would not wait (a result, or the news that the worker ended)."""
        return self.conn.poll()

    def receive(self) -> ChunkResult | None:
        """The result of the oldest chunk sent; None when the worker failed on it.

        Raises:
            WorkerGone: the worker ended without sending it.
        """
        self.pending.popleft()
        if self.conn not in wait([self.conn, self.process.sentinel]):
            raise WorkerGone(self._gone())
        try:
            reply: ChunkResult | None = self.conn.recv()
        except (EOFError, OSError):
            raise WorkerGone(self._gone()) from None
        return reply

    def _gone(self) -> str:
        self.process.join(STOP_SECONDS)
        return f"{self.process.name} ended with exit code {self.process.exitcode}"

    def stop(self) -> None:
        """Ask the worker to end, wait a little, then end it."""
        with contextlib.suppress(OSError):  # it has ended already
            self.conn.send(None)
        self.conn.close()
        self.process.join(STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def start_workers(jobs: int, strict: bool) -> list[Worker]:
    """Start ``jobs`` workers, forked when that is safe, else from a fork server (or spawned)."""
    context, parent = worker_context()
    if parent is not None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or a worker could write out a copy of what is buffered
    return [Worker(context, number, strict, parent) for number in range(1, jobs + 1)]


def worker_context() -> tuple[BaseContext, int | None]:
    """How to start workers, and this process's id when they are forked from it."""
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        # One thread: no lock can be held across the fork. Workers start in a moment and share
        # what is already imported and compiled. (Elsewhere fork is unsafe or missing.)
        return multiprocessing.get_context("fork"), os.getpid()
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["d1sim.simulator.validate.chunks"])
        return context, None
    return multiprocessing.get_context("spawn"), None


def _serve(conn: Connection, strict: bool, parent: int | None) -> None:
    """The worker's loop: check each chunk received and send its result, until told to stop."""
    _settle_in(parent)
    # Results leave from a thread of their own: a result is larger than the pipe holds, and
    # the main process reads it only when its turn comes; meanwhile this loop goes on.
    outbox: queue.SimpleQueue[ChunkResult | None] = queue.SimpleQueue()
    threading.Thread(target=_send_all, args=(conn, outbox), daemon=True).start()
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return  # the main process has gone: nothing left to do
        if chunk is None:
            return
        try:
            outbox.put(check_chunk(chunk, strict).pack())
        except Exception:  # the main process checks it again, and reports what goes wrong
            outbox.put(None)


def _send_all(conn: Connection, outbox: queue.SimpleQueue[ChunkResult | None]) -> None:
    while True:
        try:
            conn.send(outbox.get())
        except OSError:
            return  # the main process stopped listening


def _settle_in(parent: int | None) -> None:
    # Ctrl-C reaches the whole process group: the main process handles it and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    # What the fork inherited stays put: the collector would touch (and so copy) all of it.
    gc.freeze()


def _die_with_parent(parent: int | None) -> None:
    """Ask Linux to end this worker when its parent (``parent``, when known) ends, however."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # only here: it costs a few milliseconds to import

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:  # it ended before we asked
        os._exit(1)
