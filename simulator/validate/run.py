"""One run of ``d1sim validate``: the counts, the cross-input lifecycle state and the output.

Documents come in one at a time (:meth:`Validation.check_source`, from stdin, whole files and
small inputs) or as the results of chunks checked by worker processes
(:meth:`Validation.check_chunks`). Either way each problem is reported once, in input order, as
``(input name, line, problem)`` to the ``out`` callable, and counted. Past ``keep`` operationIds
the lifecycle state and the output go through a :class:`~d1sim.simulator.validate.spill.Spill`
(same output, printed at the end, memory bounded).

Example::

    >>> from d1sim.simulator.validate.reader import expand_inputs
    >>> sources = expand_inputs(["tests/data/validate/forward-skip.jsonl"])
    >>> run = Validation(sources)
    >>> run.check_source(0, sources[0]); run.finish(); run.summary()
    '2 notifications, 2 operations: 0 errors, 1 warnings'
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterable
from itertools import compress
from typing import Any

from d1sim.contracts.lifecycle.sequence import SequenceChecker
from d1sim.contracts.notification.validation import notification_validator
from d1sim.contracts.problems import Problem
from d1sim.simulator.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, InputError
from d1sim.simulator.validate.chunks import (
    LINE_SPAN,
    Chunk,
    ChunkResult,
    Found,
    operation_index,
    paused_collector,
    problems_by_line,
)
from d1sim.simulator.validate.reader import BOM, MAX_DOCUMENT, Entry, Locator, NotJson, Source, read_source
from d1sim.simulator.validate.spill import (
    KEEP_OPERATIONS,
    LINE_BITS,
    Deferred,
    Settled,
    Spill,
    as_row,
    from_row,
    line_place,
    operation_place,
    place,
)

PREFIX = "d1sim validate: error: "
SETTLE_EVERY = 1 << 16  # notifications between two freezes of the lifecycle state
LOOK_EVERY = 1 << 10  # notifications between two looks at the size of the lifecycle state


class Validation:
    """One run over many inputs: counts, the cross-input lifecycle state, and the output."""

    def __init__(
        self,
        sources: list[Source],
        *,
        strict: bool = False,
        out: Callable[[str, int, Problem], None] | None = None,
        settle_every: int = SETTLE_EVERY,
        limit: int = MAX_DOCUMENT,
        keep: int = KEEP_OPERATIONS,
    ) -> None:
        self.sources, self.limit = sources, limit
        self.settle_every, self.keep = settle_every, keep
        # Between two looks the state may grow by a few thousand records, or a few with a tiny keep.
        self._look_every = max(1, min(LOOK_EVERY, keep // 8))
        self._pause_at = min(settle_every, self._look_every)  # the next notification to pause at
        self.validator = notification_validator(strict)
        self._is_valid = self.validator.is_valid
        self.checker = SequenceChecker()
        self.out = out
        self.notifications = self.operations = self.errors = self.warnings = self.unreadable = 0
        # A location is one int, span * LINE_SPAN + line, so the checker keeps no objects. A
        # span is an input (its lines counted from 1) or a chunk of one (counted from its start).
        self._spans = {index: (index, 0) for index in range(len(sources))}
        self._bases: list[str] = []
        self._reopened: dict[int, Locator | None] = {}
        self.spill: Spill | None = None  # once the lifecycle state outgrew ``keep``
        # Inputs read whole while spilling: their late problems are located in them at the end
        # (stdin's kept, files read again).
        self._whole: dict[int, Locator | None] = {}
        self._reread: tuple[int, Locator | None] = (-1, None)
        self._span_places: dict[int, int] = {}
        self._operation_places: dict[str, int] = {}

    def check_source(self, index: int, source: Source) -> None:
        """Check every document of one input; bad text is reported and skipped."""
        check = self.check_document
        try:
            for entry in read_source(source, limit=self.limit):
                if type(entry) is tuple:
                    check(index, entry)
                else:
                    self._not_json(entry)  # type: ignore[arg-type]
        except InputError as exc:
            self.unreadable += 1
            print(PREFIX + str(exc), file=sys.stderr)

    def check_chunks(self, index: int, results: Iterable[tuple[Chunk, ChunkResult]]) -> None:
        """Take in the results of input ``index``'s chunks (see validate_pipeline), in order."""
        # The lifecycle state grows by a record per operationId and holds no cycles: without the
        # collector, taking in the results costs a sixth less.
        with paused_collector():
            self._take_chunks(index, results)

    def _take_chunks(self, index: int, results: Iterable[tuple[Chunk, ChunkResult]]) -> None:
        first_line = 1
        for chunk, result in results:
            if result.unreadable is not None:
                self.unreadable += 1
                print(PREFIX + result.unreadable, file=sys.stderr)
                return
            self.notifications += result.notifications
            self.operations += result.operations
            self._spans[chunk.span] = (index, first_line)
            late = self._record_all(result)
            if len(self.checker) > self.keep:
                self._bound()
            for bad in result.shifted(first_line):
                self._not_json(bad)
            for line, problems in problems_by_line(result.found, late):
                self._report(index, first_line + line, None, problems)
            first_line += result.lines

    def _record_all(self, result: ChunkResult) -> list[Found]:
        """The cross-line step of every operation of a chunk; the problems it finds."""
        records = result.examined()
        outcomes = list(map(self.checker.record, records))
        late = []
        for k in compress(range(len(outcomes)), outcomes):  # rare: problems are few
            where, base = records[k][4:6]
            line = where % LINE_SPAN  # type: ignore[operator]
            late += [(line, operation_index(base), p) for _, p in outcomes[k]]
        return late

    def check_document(self, index: int, entry: Entry) -> None:
        """Check one notification, ``(line, document, raw bytes or None)``, of input ``index``."""
        line, document, raw = entry
        self.notifications += 1
        if self.notifications >= self._pause_at:  # one test a notification for both chores
            self._pause()
        if raw is not None and self.spill is not None and self.out:
            self._whole[index] = None if self.sources[index].path else Locator(raw)
        problems = [] if self._is_valid(document) else self._schema_problems(document)
        operations = document.get("operations") if type(document) is dict else None
        if type(operations) is list:
            problems += self._check_operations(operations, index * LINE_SPAN + line)
        if problems:
            locator = Locator(raw) if raw is not None and self.out else None
            self._report(index, line, locator, problems)

    def _pause(self) -> None:
        """Every so many notifications: settle the collector, bound the lifecycle state."""
        count, settle, look = self.notifications, self.settle_every, self._look_every
        if not count % settle:
            _settle()
        if not count % look and len(self.checker) > self.keep:
            self._bound()
        # The next multiple of either (chunks of other inputs may have counted past one).
        self._pause_at = min(count - count % settle + settle, count - count % look + look)

    def _schema_problems(self, document: Any) -> list[tuple[int, Problem]]:
        return [(-1, p) for p in self.validator.iter_problems(document)]

    def _check_operations(self, operations: list[Any], where: int) -> list[tuple[int, Problem]]:
        """The problems of each operation, with its index."""
        self.operations += len(operations)
        if len(operations) > len(self._bases):
            self._grow_bases(len(operations))
        add, bases, problems = self.checker.add, self._bases, []
        for i, operation in enumerate(operations):
            if type(operation) is dict:
                found = add(operation, where, bases[i])
                if found:
                    problems += [(i, p) for _, p in found]
        return problems

    def _grow_bases(self, count: int) -> None:
        # One shared pointer string per position: the checker stores it for every operationId.
        self._bases += [f"/operations/{i}" for i in range(len(self._bases), count)]

    def _bound(self) -> None:
        """Move the oldest lifecycle records to disk (starting to spill, the first time)."""
        if self.spill is None:
            self.spill = Spill(self.keep, self._place_of, ordered=self.out is not None)
            self.spill.start(self.checker)
        self.spill.evict(self.checker)

    def _place_of(self, where: int, base: str) -> int:
        """The place in the output of the operation recorded at ``where`` (see spill.place)."""
        # Once per new operationId: the span's and the base pointer's parts are remembered.
        span = where >> LINE_BITS
        start = self._span_places.get(span)
        if start is None:
            start = self._span_places[span] = line_place(*self._spans[span])
        operation = self._operation_places.get(base)
        if operation is None:
            operation = self._operation_places[base] = operation_place(operation_index(base))
        return start + line_place(0, where & LINE_SPAN - 1) + operation

    def finish(self) -> None:
        """Report the lifecycle problems of every operationId seen so far, then forget them."""
        if self.spill is not None:
            self._finish_spilled(self.spill)
        for where, problem in self.checker.finish():
            self._report_whole(where, problem)
        self._reopened.clear()

    def _report_whole(self, where: int, problem: Problem) -> None:
        span, offset = divmod(where, LINE_SPAN)
        index, first = self._spans[span]
        self._emit(index, first + offset, self._reopen(index), problem)

    def _finish_spilled(self, spill: Spill) -> None:
        """The output that waited, with the problems of what was on disk merged in; then the
        whole-set problems of every operationId (in memory and on disk), as finish would."""
        with paused_collector():
            by_place, by_order = spill.settle(self.checker)
            for row in by_place:
                if len(row) == 4:  # deferred: counted already
                    self.out(self.sources[row[1]].name, row[2], from_row(row[3]))  # type: ignore[misc]
                else:
                    self._report_late(row)
            for _, where, problem in by_order:
                self._report_whole(where, from_row(problem))
            if spill.tally:  # nothing printed: only counted
                self.errors += spill.tally.errors
                self.warnings += spill.tally.warnings
        spill.close()
        self.spill = None
        self._whole.clear()
        self._reread = (-1, None)
        self._span_places.clear()

    def _report_late(self, row: Settled) -> None:
        """A problem that a record on disk showed at the end, where the record was read."""
        _, where, problem = row
        span, offset = divmod(where, LINE_SPAN)
        index, first = self._spans[span]
        self._emit(index, first + offset, self._whole_locator(index), from_row(problem))

    def _whole_locator(self, index: int) -> Locator | None:
        """The locator of input ``index`` if it was read whole while spilling, else None."""
        if index not in self._whole:
            return None
        kept = self._whole[index]  # stdin's, which cannot be read again
        if kept is None and self._reread[0] != index:  # a file: one read again at a time
            self._reread = (index, self._read_locator(index))
        return kept or self._reread[1]

    def _reopen(self, index: int) -> Locator | None:
        # Whole-file documents are gone by the end; read the file again to locate the pointer.
        source = self.sources[index]
        if source.mode != "document" or source.path is None or not self.out:
            return None
        if index not in self._reopened:
            self._reopened[index] = self._read_locator(index)
        return self._reopened[index]

    def _read_locator(self, index: int) -> Locator | None:
        try:
            return Locator(self.sources[index].path.read_bytes().removeprefix(BOM))
        except (OSError, UnicodeDecodeError):
            return None

    def _report(self, index: int, line: int, locator: Locator | None, problems: Iterable[tuple[int, Problem]]) -> None:
        """Report the problems of one document, each with its operation's index (-1: none)."""
        if self.spill is not None:
            self._defer(index, line, locator, problems)
            return
        for _, problem in problems:
            self._emit(index, line, locator, problem)

    def _emit(self, index: int, line: int, locator: Locator | None, problem: Problem) -> None:
        self._count(problem)
        if self.out:
            self.out(self.sources[index].name, locator.line_of(problem.pointer) if locator else line, problem)

    def _defer(self, index: int, line: int, locator: Locator | None, problems: Iterable[tuple[int, Problem]]) -> None:
        """Count now, print at the end (:meth:`_finish_spilled`), in order."""
        for operation, problem in problems:
            self._count(problem)
            if self.out:
                shown = locator.line_of(problem.pointer) if locator else line
                row: Deferred = (place(index, line, operation), index, shown, as_row(problem))
                self.spill.defer(row)  # type: ignore[union-attr]

    def _count(self, problem: Problem) -> None:
        if problem.is_error:
            self.errors += 1
        else:
            self.warnings += 1

    def _not_json(self, bad: NotJson) -> None:
        self.unreadable += 1
        print(PREFIX + str(bad), file=sys.stderr)

    def summary(self) -> str:
        """``N notifications, M operations: E errors, W warnings`` (plus unreadable inputs)."""
        text = (
            f"{self.notifications} notifications, {self.operations} operations: "
            f"{self.errors} errors, {self.warnings} warnings"
        )
        return text + (f", {self.unreadable} not JSON or unreadable" if self.unreadable else "")

    def exit_code(self) -> int:
        """2 when some input could not be read, else 1 when any error, else 0."""
        if self.unreadable:
            return EXIT_USAGE
        return EXIT_FAILED if self.errors else EXIT_OK


def _settle() -> None:
    # The lifecycle state gains one record per operationId and is never garbage, yet the cyclic
    # collector would rescan all of it on every full pass (about 10% of a 1M-operation run).
    # Collect what is garbage now (so no cycle is kept), then hide the survivors from it.
    gc.collect()
    gc.freeze()
