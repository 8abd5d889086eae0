"""``d1sim validate PATH...``: check notification files against the schema and the lifecycle.

Each problem is one line on stdout, ``path:line:pointer: severity: message`` (``--format json``:
one JSON object per line with the same fields plus ``code``). Lifecycle rules are checked across
all inputs: a CARD_SHIPPED in one file and a DATA_EXCEPTION for the same operationId in another
is an error. Text that is not JSON is reported on stderr with its line and column, the rest is
still checked, and the exit code is 2. A summary line always goes to stderr.

Exit codes: 0 no error (warnings allowed), 1 at least one error, 2 usage error, unreadable
input or text that is not JSON.

Example::

    d1sim validate captures/ today.jsonl
    curl -s http://host/productionStatus | d1sim validate -
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import orjson

from contracts.problems import Problem
from contracts.sequence import SequenceChecker
from contracts.validation import notification_validator
from simulator.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, InputError
from simulator.reader import BOM, Entry, Locator, NotJson, Source, expand_inputs, read_source

PREFIX = "d1sim validate: error: "
EPILOG = """\
output:
  one line per problem on stdout:  path:line:pointer: error|warning: message
  (--format json: one JSON object per line with path, line, pointer, severity,
  code, message); text that is not JSON goes to stderr as path:line:column;
  a summary line always goes to stderr.

inputs:
  *.jsonl / *.ndjson are streamed line by line; *.json is one document, read
  whole; other files and - (stdin) are JSON Lines when their first non-blank
  line is a JSON document by itself, else one document.

exit status:
  0 no error (warnings allowed), 1 at least one error,
  2 usage error, unreadable input or text that is not JSON
"""
SETTLE_EVERY = 1 << 16  # notifications between two freezes of the lifecycle state


def add_parser(subparsers: Any) -> None:
    """Register ``validate`` on the ``d1sim`` parser."""
    parser = subparsers.add_parser(
        "validate",
        help="check notification files (JSON, JSON Lines, directories, - for stdin)",
        description="Check notifications against the schema and the PRODUCE lifecycle. "
        "Lifecycle rules hold across all inputs (one operationId may span files).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a .json file (one notification), a .jsonl file (one per line), "
        "a directory (its *.json and *.jsonl, recursively) or - for stdin",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: path:line:pointer: severity: message; json: one object per line",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="use the strict profile (lints d1sim's own output; never D1's)",
    )
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    parser.add_argument(
        "--per-file",
        action="store_true",
        help="check each input's lifecycle on its own instead of across inputs",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate every input named in ``args``; return the exit code."""
    sources = expand_inputs(args.paths)
    out = None if args.quiet else _writer(args.format)
    validation = Validation(sources, strict=args.strict, out=out)
    try:
        for index, source in enumerate(sources):
            validation.check_source(index, source)
            if args.per_file:
                validation.finish()
        validation.finish()
    finally:
        gc.unfreeze()
    print(validation.summary(), file=sys.stderr)
    return validation.exit_code()


def _writer(form: str) -> Callable[[str, int, Problem], None]:
    write = sys.stdout.write
    if form == "json":

        def emit_json(name: str, line: int, problem: Problem) -> None:
            record = {"path": name, "line": line, **problem.as_dict()}
            write(orjson.dumps(record).decode() + "\n")

        return emit_json

    def emit_text(name: str, line: int, problem: Problem) -> None:
        write(f"{name}:{line}:{problem.pointer}: {problem.severity}: {problem.message}\n")

    return emit_text


class Validation:
    """One run over many inputs: counts, the cross-input lifecycle state, and the output."""

    def __init__(
        self,
        sources: list[Source],
        *,
        strict: bool = False,
        out: Callable[[str, int, Problem], None] | None = None,
    ) -> None:
        self.sources = sources
        self.validator = notification_validator(strict)
        self._is_valid = self.validator.is_valid
        self.checker = SequenceChecker()
        self.out = out
        self.notifications = self.operations = self.errors = self.warnings = self.unreadable = 0
        # A location is one int, line * stride + source index, so the checker keeps no objects.
        self._stride = max(1, len(sources))
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

    def check_document(self, index: int, entry: Entry) -> None:
        """Check one notification, ``(line, document, raw bytes or None)``, of input ``index``."""
        line, document, raw = entry
        self.notifications += 1
        if not self.notifications % SETTLE_EVERY:
            _settle()
        problems = [] if self._is_valid(document) else self._schema_problems(document)
        operations = document.get("operations") if type(document) is dict else None
        if type(operations) is list:
            problems += self._check_operations(operations, line * self._stride + index)
        if problems:
            locator = Locator(raw) if raw is not None and self.out else None
            self._report(index, line, locator, (p for _, p in problems))

    def _schema_problems(self, document: Any) -> list[tuple[Hashable, Problem]]:
        return [(None, p) for p in self.validator.iter_problems(document)]

    def _check_operations(
        self, operations: list[Any], where: int
    ) -> list[tuple[Hashable, Problem]]:
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
            line, index = divmod(where, self._stride)  # type: ignore[operator]
            self._report(index, line, self._reopen(index), [problem])
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

    def _report(
        self, index: int, line: int, locator: Locator | None, problems: Iterable[Problem]
    ) -> None:
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
