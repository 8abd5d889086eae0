"""Check large JSON Lines inputs in worker processes, and hand the results back in input order.

``d1sim validate`` spends most of its time parsing and checking each line on its own; only the
lifecycle bookkeeping needs every line in order. So large ``*.jsonl`` inputs are cut into byte
ranges (:class:`Chunk`), worker processes (and this one, when it would otherwise wait) check
the ranges (:func:`check_chunk`), and this process takes the results in input order.

A worker that dies does not hang the run: this process stops the others and checks the
remaining chunks itself (see :mod:`d1sim.simulator.validate.workers`).

Example::

    >>> from d1sim.simulator.validate.reader import expand_inputs
    >>> sources = expand_inputs(["tests/data/validate/forward-skip.jsonl"])
    >>> with ChunkPipeline(plan_chunks(sources), jobs=2) as pipeline:
    ...     [result.notifications for _, result in pipeline.results_of(0)]
    [2]
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType

from d1sim.simulator.validate.chunks import Chunk, ChunkResult, check_chunk
from d1sim.simulator.validate.reader import Source
from d1sim.simulator.validate.workers import Worker, WorkerGone, start_workers

CHUNK_BYTES = 2 << 20  # about 5,000 lines: cheap to hand over, short enough to balance
PARALLEL_BYTES = 16 << 20  # below this much JSON Lines, starting workers costs more than it saves
MAX_AUTO_JOBS = 8  # beyond that, taking in the results in this process is the limit
AHEAD_PER_WORKER = 3  # chunks sent to a worker and not yet answered: it never waits for work


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the platform tells)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def is_parallel(source: Source) -> bool:
    """Whether workers may check ``source``: a JSON Lines file (stdin and documents stay here)."""
    return source.mode == "lines" and source.path is not None


def auto_jobs(sources: Sequence[Source]) -> int:
    """One process per CPU when the JSON Lines inputs are large enough to gain from it, else 1."""
    total = 0
    for source in sources:
        if is_parallel(source):
            with contextlib.suppress(OSError):  # reported when the file is read
                total += source.path.stat().st_size  # type: ignore[union-attr]
    cpus = available_cpus()
    return min(cpus, MAX_AUTO_JOBS) if cpus > 1 and total >= PARALLEL_BYTES else 1


def plan_chunks(sources: Sequence[Source], size: int | None = None) -> list[Chunk]:
    """Byte ranges of every parallel source, in input order (an empty file is one range)."""
    size = size or CHUNK_BYTES
    chunks: list[Chunk] = []
    for index, source in enumerate(sources):
        if not is_parallel(source):
            continue
        path = str(source.path)
        try:
            length = os.stat(path).st_size
        except OSError:
            length = 0  # the worker's read reports why
        starts = list(range(0, length, size)) or [0]
        ends: list[int | None] = [*starts[1:], None]
        for start, end in zip(starts, ends, strict=True):
            # Spans below len(sources) are the inputs themselves (see Validation).
            chunks.append(Chunk(index, source.name, path, start, end, len(sources) + len(chunks)))
    return chunks


class ChunkPipeline:
    """``jobs`` processes checking ``chunks``: this one and ``jobs - 1`` workers.

    :meth:`results_of` hands back each input's results in order. Workers are kept a few chunks
    ahead; while the result this process needs next is not ready, it checks a later chunk
    itself. So no process waits, and on 2 CPUs there are 2 processes, not 3 taking turns.

    Use as a context manager: leaving it stops the workers. ``jobs`` below 2 or no chunks: no
    worker is started. ``notice`` is told when a worker died and this process took over.
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        jobs: int,
        strict: bool = False,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.strict = strict
        self.notice = notice
        self.indexes = frozenset(chunk.index for chunk in chunks)
        self._todo = deque(chunks)
        self._sent: deque[tuple[Chunk, Worker | ChunkResult | None]] = deque()  # in input order
        # This process checks chunks too, whenever the result it needs next is not ready.
        self._workers = start_workers(jobs - 1, strict) if jobs > 1 and chunks else []

    def __enter__(self) -> ChunkPipeline:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (what they are checking now is finished, the rest dropped)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()

    def results_of(self, index: int) -> Iterator[tuple[Chunk, ChunkResult]]:
        """The results of input ``index``'s chunks, in order (earlier inputs' leftovers dropped)."""
        self._fill()
        while self._sent and self._sent[0][0].index <= index:
            chunk, worker = self._sent.popleft()
            result = self._result(chunk, worker)
            self._fill()
            if chunk.index == index:
                yield chunk, result

    def _fill(self) -> None:
        """Keep every worker a few chunks ahead (the least busy gets the next one)."""
        while self._todo:
            worker = min(self._workers, key=lambda w: len(w.pending), default=None)
            if worker is None:
                if not self._sent:  # no workers: this process checks one chunk at a time
                    self._sent.append((self._todo.popleft(), None))
                return
            if len(worker.pending) >= AHEAD_PER_WORKER:
                return
            try:
                worker.send(self._todo[0])
            except WorkerGone as exc:
                self._take_over(exc)
                continue
            self._sent.append((self._todo.popleft(), worker))

    def _result(self, chunk: Chunk, worker: Worker | ChunkResult | None) -> ChunkResult:
        if isinstance(worker, ChunkResult):
            return worker
        if worker is not None and self._workers:
            while self._todo and not worker.ready():
                # Rather than wait, check a later chunk here: its result waits for its turn.
                stolen = self._todo.popleft()
                self._sent.append((stolen, check_chunk(stolen, self.strict)))
            try:
                result = worker.receive()
            except WorkerGone as exc:
                self._take_over(exc)
            else:
                if result is not None:
                    return result
        return check_chunk(chunk, self.strict)

    def _take_over(self, exc: WorkerGone) -> None:
        """A worker died: stop them all and check the rest here (slower, but complete)."""
        self.close()
        if self.notice:
            self.notice(f"{exc}; checking the rest in this process")
