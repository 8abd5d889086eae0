"""The per-line half of ``d1sim validate``, on one byte range of a JSON Lines input.

A worker process reads its own range of the file, parses each line, runs the schema fast path
and the stateless lifecycle checks (:meth:`SequenceChecker.examine`), and returns compact
records: one small tuple per operation, full problems only for the rare lines that have some.
The main process keeps the cross-line lifecycle state (:meth:`SequenceChecker.record`).

Nothing here knows about processes: :func:`check_chunk` is a plain function of its arguments,
so the main process can run it too (for a chunk whose worker died).

Example::

    >>> from d1sim.simulator.validate.chunks import Chunk, check_chunk
    >>> result = check_chunk(Chunk(0, "x", "tests/data/validate/forward-skip.jsonl", 0, None))
    >>> result.lines, result.notifications
    (2, 2)
"""

from __future__ import annotations

import gc
import marshal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from d1sim.contracts.lifecycle.sequence import Examined, SequenceChecker
from d1sim.contracts.notification.validation import NotificationValidator, notification_validator
from d1sim.contracts.problems import Problem
from d1sim.simulator.validate.reader import MAX_DOCUMENT, NotJson, read_line_range, rejected_line

# Where an operation is, for the lifecycle checker: span * LINE_SPAN + line. A chunk is a span
# of its own, its lines counted from 0: workers need not know how many lines came before.
LINE_SPAN = 1 << 40
# (line in the chunk from 0, index in "operations" or -1 for the document, problem)
Found = tuple[int, int, Problem]


@dataclass(frozen=True, slots=True)
class Chunk:
    """The lines of input ``index`` (shown as ``name``) that start in bytes [start, end)."""

    index: int
    name: str
    path: str
    start: int
    end: int | None  # None: to the end of the file, even if it grew since it was planned
    span: int = 0
    limit: int = MAX_DOCUMENT  # bytes of one line (see reader.bounded_lines)


@dataclass(slots=True)
class ChunkResult:
    """What one chunk holds, in the order of its lines; line numbers count from the chunk."""

    lines: int = 0
    notifications: int = 0
    operations: int = 0
    # What SequenceChecker.examine returned (its problems moved to found); marshalled when
    # the result goes through a pipe: cheaper to make and read than a pickle, and one string
    # per base pointer, shared.
    records: list[Examined] | bytes = field(default_factory=list)
    found: list[Found] = field(default_factory=list)
    not_json: list[NotJson] = field(default_factory=list)
    unreadable: str | None = None  # why the input could not be read; then nothing else is set

    def pack(self) -> ChunkResult:
        """This result, its records marshalled (before it goes through a pipe)."""
        if type(self.records) is list:
            self.records = marshal.dumps(self.records)
        return self

    def examined(self) -> list[Examined]:
        """The records, unmarshalled when they were packed."""
        records = self.records
        return marshal.loads(records) if type(records) is bytes else records  # type: ignore[return-value]

    def shifted(self, first_line: int) -> list[NotJson]:
        """The not-JSON lines, numbered in the file when the chunk starts at ``first_line``."""
        return [replace(bad, line=bad.line + first_line - 1) for bad in self.not_json]


def check_chunk(chunk: Chunk, strict: bool = False) -> ChunkResult:
    """Check every line of ``chunk`` on its own; an unreadable file is a result, not an error."""
    try:
        lines = read_line_range(Path(chunk.path), chunk.start, chunk.end, chunk.limit)
    except OSError as exc:
        return ChunkResult(unreadable=f"{chunk.name}: cannot read: {exc.strerror or exc}")
    with paused_collector():
        return _line_checker(strict).check(chunk, lines)


@contextmanager
def paused_collector() -> Iterator[None]:
    """Run the block without the cyclic garbage collector (it runs again after).

    For loops that allocate plenty and make no reference cycles (parsed JSON, records, the
    lifecycle state): the collector would only scan what they keep, again and again. What a
    rare path leaves (an exception, a schema error tree) is collected once it runs again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@cache
def _line_checker(strict: bool) -> LineChecker:
    return LineChecker(notification_validator(strict), SequenceChecker())


class LineChecker:
    """Parses and checks lines with one validator and one (stateless) use of a checker."""

    def __init__(self, validator: NotificationValidator, checker: SequenceChecker) -> None:
        self.validator = validator
        self.examine = checker.examine
        self.bases: list[str] = []

    def check(self, chunk: Chunk, lines: list[bytes]) -> ChunkResult:
        """The result of the lines of ``chunk``, each with its newline (but maybe the last)."""
        result = ChunkResult(lines=len(lines))
        records: list[Examined] = []
        # One loop, locals only: this runs once per line and once per operation, and a call or
        # an attribute less per operation is worth several percent of the whole run.
        loads, decode_error, is_valid = orjson.loads, orjson.JSONDecodeError, self.validator.is_valid
        examine, bases, keep = self.examine, self.bases, records.append
        where = chunk.span * LINE_SPAN - 1
        skipped = operations_seen = 0
        for number, line in enumerate(lines):
            where += 1
            try:
                document = loads(line)
            except decode_error as exc:
                document = self._rejected(chunk, number, line, exc, result)
                if document is _SKIP:
                    skipped += 1
                    continue
            if not is_valid(document):
                result.found += [(number, -1, p) for p in self.validator.iter_problems(document)]
            operations = document.get("operations") if type(document) is dict else None
            if type(operations) is not list:
                continue
            operations_seen += len(operations)
            if len(operations) > len(bases):
                bases += [f"/operations/{i}" for i in range(len(bases), len(operations))]
            for i, operation in enumerate(operations):
                examined = examine(operation, where, bases[i]) if type(operation) is dict else None
                if examined is not None:
                    if examined[6]:  # rare: Problems travel apart, records stay marshallable
                        result.found += [(number, i, p) for p in examined[6]]
                        examined = (*examined[:6], ())
                    if type(examined[0]) is str:
                        keep(examined)
        result.notifications, result.operations = len(lines) - skipped, operations_seen
        result.records = records
        return result

    def _rejected(
        self, chunk: Chunk, number: int, line: bytes, exc: orjson.JSONDecodeError, result: ChunkResult
    ) -> Any:
        """The document of a line orjson rejected (after a byte order mark), or _SKIP."""
        first = chunk.start == 0 and not number  # only the file's first line may carry a BOM
        entry = rejected_line(chunk.name, number + 1, line, exc, first)
        if entry is None:
            return _SKIP
        if isinstance(entry, NotJson):
            result.not_json.append(entry)
            return _SKIP
        return entry[1]


_SKIP = object()


def operation_index(base: str) -> int:
    """The index in ``operations`` of the base pointer ``/operations/<index>``."""
    return int(base.rpartition("/")[2])


def problems_by_line(found: list[Found], late: list[Found]) -> Iterator[tuple[int, list[tuple[int, Problem]]]]:
    """The problems of each line, ordered as ``d1sim validate`` reports one document's, each
    with the index of its operation (-1: the document's).

    ``found`` are a chunk's own problems (schema, then each operation's), ``late`` those that
    the lifecycle state adds; both in line order. Per line: schema problems first, then per
    operation its own problems before the late ones.
    """
    merged = [(line, i, 0, p) for line, i, p in found] + [(line, i, 1, p) for line, i, p in late]
    merged.sort(key=itemgetter(0, 1, 2))
    for line, group in groupby(merged, key=itemgetter(0)):
        yield line, [(i, problem) for _, i, _, problem in group]
