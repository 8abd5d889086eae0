"""Hold ``d1sim validate``'s lifecycle state within a bound: what does not fit waits on disk.

The lifecycle rules hold across lines and files, so :class:`SequenceChecker` keeps a record per
operationId, about half a kilobyte each. Past ``keep`` records, :class:`Spill` moves the oldest
to a temporary file, partitioned by a hash of the operationId, and sends there every later
operation of an operationId that went (a bit filter of fixed size says which may have gone; a
false alarm only sends to disk an operation that could have stayed). At the end each partition
is checked on its own, in memory, when it is small enough; a larger one is cut again first.

From the first move on, the output waits too, on disk, each problem keyed by its place in the
input (:func:`place`). The problems the partitions find are merged in by that key, and the
whole-set problems by when their operationId was first seen: the output is byte for byte what a
run in memory prints, only later. Disk and time grow linearly with the input, memory does not.
"""

from __future__ import annotations

import heapq
import marshal
import tempfile
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from operator import itemgetter
from typing import Any

from d1sim.contracts.lifecycle.sequence import Examined, SequenceChecker
from d1sim.contracts.problems import Problem
from d1sim.simulator.validate.chunks import LINE_SPAN

KEEP_OPERATIONS = 100_000  # operationIds whose records stay in memory (about 50 MB)
FILTER_BITS = 1 << 24  # 2 MiB: at 1 million operationIds gone, 6% false alarms
FANOUT_BITS = 4  # a partition is cut into up to 16
HASH_BITS = 64
BATCH = 512  # rows per write: 16 partitions' pending rows stay a few MB
OUTPUT_BATCH = 64  # rows per write of a problem run: many runs are read side by side
LINE_BITS = LINE_SPAN.bit_length() - 1  # lines of one input
OPERATION_BITS = 33  # operations of one document (more than one can hold), and after-own

ProblemRow = tuple[str, str, str, str]  # a Problem's fields, for marshal
# (key, index, line shown, problem): a problem found while reading, waiting for its turn.
Deferred = tuple[int, int, int, ProblemRow]
# (key, where, problem): a problem found at the end, keyed by its place (+1: after the
# operation's own) or, for a whole-set problem, by when its operationId was first seen.
Settled = tuple[int, Hashable, ProblemRow]


def place(index: int, line: int, operation: int) -> int:
    """One int that sorts as the output does: by input, line, then operation (-1: the document);
    even, so that ``place + 1`` sorts after an operation's own problems, before the next's."""
    return line_place(index, line) + operation_place(operation)


def line_place(index: int, line: int) -> int:
    """:func:`place` of a line before its operations (a sum: place(i, l + n) adds (n << 33))."""
    return (index << LINE_BITS | line) << OPERATION_BITS


def operation_place(operation: int) -> int:
    return (operation + 1) << 1


def as_row(problem: Problem) -> ProblemRow:
    """A problem as plain values (for marshal)."""
    return problem.pointer, problem.message, problem.severity, problem.code


def from_row(row: ProblemRow) -> Problem:
    return Problem(row[0], row[1], row[2], row[3])


class Blobs:
    """Lists of rows, marshalled into one temporary file and read back by their address."""

    def __init__(self) -> None:
        # Open for the whole run, closed by close(); unlinked at once, so never left behind.
        self._file = tempfile.TemporaryFile(prefix="d1sim-validate-")  # noqa: SIM115
        self._end = 0

    def put(self, rows: list[Any]) -> tuple[int, int]:
        data = marshal.dumps(rows)
        self._file.seek(self._end)
        self._file.write(data)
        address = self._end, len(data)
        self._end += len(data)
        return address

    def get(self, address: tuple[int, int]) -> list[Any]:
        self._file.seek(address[0])
        return marshal.loads(self._file.read(address[1]))

    def close(self) -> None:
        self._file.close()


class Run:
    """Rows appended in order and read back in that order, a batch at a time."""

    def __init__(self, blobs: Blobs, batch: int = BATCH) -> None:
        self.blobs, self.batch = blobs, batch
        self.count = 0
        self._pending: list[Any] = []
        self._written: list[tuple[int, int]] = []

    def append(self, row: Any) -> None:
        self._pending.append(row)
        if len(self._pending) >= self.batch:
            self.flush()

    def extend(self, rows: list[Any]) -> None:
        self._pending += rows
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.count += len(self._pending)
            self._written.append(self.blobs.put(self._pending))
            self._pending = []

    def __iter__(self) -> Iterator[Any]:
        self.flush()
        for address in self._written:
            yield from self.blobs.get(address)


class Tally:
    """Stands for the runs of problems when nothing is printed: counts them, keeps none."""

    def __init__(self) -> None:
        self.errors = self.warnings = 0

    def append(self, row: Settled) -> None:
        if row[2][2] == "error":
            self.errors += 1
        else:
            self.warnings += 1

    def extend(self, rows: list[Settled]) -> None:
        for row in rows:
            self.append(row)

    def __iter__(self) -> Iterator[Any]:
        return iter(())


class Spill:
    """The records of a :class:`SequenceChecker` beyond ``keep`` operationIds, and the output.

    :meth:`start` once the checker holds too many (it then asks :meth:`admit` about each new
    operationId), :meth:`evict` whenever it does again, :meth:`defer` each problem found while
    reading, and at the end :meth:`settle`, then :meth:`close`. ``place_of(where, base)`` is the
    :func:`place` of the operation recorded at ``where`` with base pointer ``base``. With
    ``ordered`` False (nothing is printed) the problems found at the end are only counted, in
    :attr:`tally`.
    """

    def __init__(
        self, keep: int, place_of: Callable[[Any, str], int], filter_bits: int | None = None, ordered: bool = True
    ) -> None:
        self.keep = keep
        self._place_of = place_of
        self.tally = None if ordered else Tally()
        self._blobs = Blobs()
        self._parts = [Run(self._blobs) for _ in range(1 << FANOUT_BITS)]
        self._bits = bytearray(max((filter_bits or FILTER_BITS) >> 3, 1))
        self._mask = len(self._bits) * 8 - 1
        # When each held operationId was first seen (what finish is ordered by), oldest first
        # like the checker's records. A tick counts the operations admit is asked about: held
        # (new) or sent to disk (maybe new there), in input order; those held before start
        # count below zero.
        self._seen: deque[int] = deque()
        self._ticks = 0
        self.deferred = Run(self._blobs)

    def start(self, checker: SequenceChecker) -> None:
        """Take over from here: what ``checker`` holds was first seen before anything to come."""
        self._seen.extend(range(-len(checker), 0))
        checker.admit = self.admit

    def admit(self, examined: Examined) -> bool:
        """Whether the checker may hold a new operationId; if not, its operation goes to disk."""
        op_id = examined[0]
        self._ticks = tick = self._ticks + 1
        bit = hash(op_id) & self._mask
        if self._bits[bit >> 3] >> (bit & 7) & 1:
            # Its problems were the caller's; in their place, when this one was seen.
            self._parts[hash(op_id) & len(self._parts) - 1].append((*examined[:6], tick))
            return False
        self._seen.append(tick)
        return True

    def evict(self, checker: SequenceChecker) -> None:
        """Move the oldest records to disk until ``checker`` holds an eighth less than ``keep``."""
        over = len(checker) - self.keep
        if over <= 0:
            return
        bits, mask, low, seen = self._bits, self._mask, len(self._parts) - 1, self._seen
        rows: list[list[Any]] = [[] for _ in self._parts]
        for op_id, track in checker.release(over + self.keep // 8):
            code = hash(op_id)
            bits[(code & mask) >> 3] |= 1 << (code & 7)
            rows[code & low].append((op_id, track, seen.popleft()))
        for part, moved in zip(self._parts, rows, strict=True):
            part.extend(moved)

    def defer(self, row: Deferred) -> None:
        """Keep a problem found while reading until :meth:`settle` (keyed by :func:`place`)."""
        self.deferred.append(row)

    def settle(self, checker: SequenceChecker) -> tuple[Iterator[Deferred | Settled], Iterator[Settled]]:
        """Check every operation: (the problems by place, the deferred ones merged in; then the
        whole-set problems in the order their operationIds were first seen)."""
        seen = list(self._seen)
        orders = self._output()
        for rank, where, problem in checker.verdicts():
            orders.append((seen[rank], where, as_row(problem)))
        self._seen.clear()
        checker.admit = None
        places: list[Iterable[Deferred | Settled]] = [self.deferred]
        whole: list[Iterable[Settled]] = [orders]
        for part in self._parts:
            self._check(part, FANOUT_BITS, checker.model, places, whole)
        key = itemgetter(0)
        return heapq.merge(*places, key=key), heapq.merge(*whole, key=key)

    def _check(self, part: Run, shift: int, model: Any, places: list[Any], whole: list[Any]) -> None:
        """Check one partition in memory, or cut it (by further bits of the hash) and recurse."""
        part.flush()
        if part.count > self.keep and shift < HASH_BITS:
            bits = min(FANOUT_BITS, (part.count // self.keep).bit_length(), HASH_BITS - shift)
            subs = [Run(self._blobs) for _ in range(1 << bits)]
            low = len(subs) - 1
            for row in part:
                subs[(hash(row[0]) >> shift) & low].append(row)
            for sub in subs:
                sub.flush()
                # All in one: the rows share every bit so far, so likely an operationId or a
                # few (many rows, few records): cutting again would not help.
                self._check(sub, shift + bits if sub.count < part.count else HASH_BITS, model, places, whole)
            return
        late, orders = self._output(), self._output()
        seen: list[int] = []
        place_of = self._place_of

        def first_seen(row: Any) -> bool:
            seen.append(row[6])  # its tick
            return True

        checker = SequenceChecker(model, admit=first_seen)
        record, adopt = checker.record, checker.adopt
        for row in part:
            if len(row) == 3:  # a record moved from memory: (operationId, record, first seen)
                adopt(row[0], row[1])
                seen.append(row[2])
                continue
            found = record(row)
            if found:
                late.extend([(place_of(where, row[5]) + 1, where, as_row(problem)) for where, problem in found])
        for rank, where, problem in checker.verdicts():
            orders.append((seen[rank], where, as_row(problem)))
        places.append(late)
        whole.append(orders)

    def _output(self) -> Run | Tally:
        """Where problems found at the end go: a run to merge, or the tally."""
        return self.tally or Run(self._blobs, OUTPUT_BATCH)

    def close(self) -> None:
        """Delete the temporary file."""
        self._blobs.close()

