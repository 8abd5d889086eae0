"""One run of ``d1sim validate``: the counts, the cross-input lifecycle state and the output.

Documents come in one at a time (:meth:`Validation.check_source`, from stdin, whole files and
small inputs) or as the results of chunks checked by worker processes
(:meth:`Validation.check_chunks`). Either way each problem is reported once, in input order, as
``(input name, line, problem)`` to the ``out`` callable, and counted.

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
from collections.abc import Callable, Hashable, Iterable
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
from d1sim.simulator.validate.reader import BOM, Entry, Locator, NotJson, Source, read_source

PREFIX = "d1sim validate: error: "
SETTLE_EVERY = 1 << 16  # notifications between two freezes of the lifecycle state


class Validation:
    """One run over many inputs: counts, the cross-input lifecycle state, and the output."""

    def __init__(
        self,
        sources: list[Source],
        *,
        strict: bool = False,
        out: Callable[[str, int, Problem], None] | None = None,
        settle_every: int = SETTLE_EVERY,
    ) -> None:
        self.sources = sources
        self.settle_every = settle_every
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

    def check_source(self, index: int, source: Source) -> None:
        """Check every document of one input; bad text is reported and skipped."""
        check = self.check_document
        try:
            for entry in read_source(source):
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
        if not self.notifications % self.settle_every:
            _settle()
        problems = [] if self._is_valid(document) else self._schema_problems(document)
        operations = document.get("operations") if type(document) is dict else None
        if type(operations) is list:
            problems += self._check_operations(operations, index * LINE_SPAN + line)
        if problems:
            locator = Locator(raw) if raw is not None and self.out else None
            self._report(index, line, locator, (p for _, p in problems))

    def _schema_problems(self, document: Any) -> list[tuple[Hashable, Problem]]:
        return [(None, p) for p in self.validator.iter_problems(document)]

    def _check_operations(self, operations: list[Any], where: int) -> list[tuple[Hashable, Problem]]:
        self.operations += len(operations)
        if len(operations) > len(self._bases):
            self._grow_bases(len(operations))
        add, bases, problems = self.checker.add, self._bases, []
        for i, operation in enumerate(operations):
            if type(operation) is dict:
                found = add(operation, where, bases[i])
                if found:
                    problems += found
        return problems

    def _grow_bases(self, count: int) -> None:
        # One shared pointer string per position: the checker stores it for every operationId.
        self._bases += [f"/operations/{i}" for i in range(len(self._bases), count)]

    def finish(self) -> None:
        """Report the lifecycle problems of every operationId seen so far, then forget them."""
        for where, problem in self.checker.finish():
            span, offset = divmod(where, LINE_SPAN)  # type: ignore[operator]
            index, first = self._spans[span]
            self._report(index, first + offset, self._reopen(index), [problem])
        self._reopened.clear()

    def _reopen(self, index: int) -> Locator | None:
        # Whole-file documents are gone by the end; read the file again to locate the pointer.
        source = self.sources[index]
        if source.mode != "document" or source.path is None or not self.out:
            return None
        if index not in self._reopened:
            try:
                self._reopened[index] = Locator(source.path.read_bytes().removeprefix(BOM))
            except (OSError, UnicodeDecodeError):
                self._reopened[index] = None
        return self._reopened[index]

    def _report(self, index: int, line: int, locator: Locator | None, problems: Iterable[Problem]) -> None:
        name = self.sources[index].name
        for problem in problems:
            if problem.is_error:
                self.errors += 1
            else:
                self.warnings += 1
            if self.out:
                self.out(name, locator.line_of(problem.pointer) if locator else line, problem)

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
