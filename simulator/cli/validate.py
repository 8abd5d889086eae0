"""``d1sim validate PATH...``: check notification files against the schema and the lifecycle.

Each problem is one line on stdout, ``path:line:pointer: severity: message`` (``--format json``:
one JSON object per line with the same fields plus ``code``). Lifecycle rules are checked across
all inputs: a CARD_SHIPPED in one file and a DATA_EXCEPTION for the same operationId in another
is an error. Text that is not JSON is reported on stderr with its line and column, the rest is
still checked, and the exit code is 2. A summary line always goes to stderr.

Large JSON Lines inputs are checked by several processes (``--jobs``, one per CPU by default);
the output is the same, in the same order.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from d1sim.contracts.problems import Problem
from d1sim.simulator.cli.options import MAX_INT, integer, jobs_type
from d1sim.simulator.ticker import Ticker
from d1sim.simulator.validate.pipeline import (
    CHUNK_BYTES,
    PARALLEL_BYTES,
    ChunkPipeline,
    auto_jobs,
    plan_chunks,
)
from d1sim.simulator.validate.reader import MAX_DOCUMENT, expand_inputs
from d1sim.simulator.validate.run import SETTLE_EVERY, Validation
from d1sim.simulator.validate.spill import KEEP_OPERATIONS

EPILOG = """\
output:
  one line per problem on stdout:  path:line:pointer: error|warning: message
  (--format json: one JSON object per line with path, line, pointer, severity,
  code, message); text that is not JSON goes to stderr as path:line:column;
  a summary line always goes to stderr.

inputs:
  *.jsonl / *.ndjson are streamed line by line; *.json is one document, read
  whole; other files and - (stdin) are JSON Lines when their first non-blank
  line is a JSON document by itself, else one document. Large *.jsonl inputs
  are cut into chunks that several processes check (--jobs): the output is the
  same, in the same order.

memory:
  the lifecycle check keeps a record per operationId; past 100,000 of them the
  oldest go to a temporary file (in TMPDIR; a few tens of bytes an operation),
  so memory stays flat. The output is the same, but printed when the run ends.

exit status:
  0 no error (warnings allowed), 1 at least one error,
  2 usage error, unreadable input or text that is not JSON
"""


@dataclass(frozen=True, slots=True)
class Tuning:
    """How the command splits its work; the defaults suit real captures, tests make them small."""

    chunk_bytes: int = CHUNK_BYTES  # one unit of a worker's work
    parallel_bytes: int = PARALLEL_BYTES  # JSON Lines total from which workers start unasked
    settle_every: int = SETTLE_EVERY  # notifications between two settlings of the collector
    keep_operations: int = KEEP_OPERATIONS  # operationIds held in memory; the rest wait on disk


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
    parser.add_argument(
        "--jobs",
        type=jobs_type(),
        default=None,
        metavar="N",
        help="processes checking *.jsonl inputs, this one included; 1: no other (default: one "
        f"per CPU when the JSON Lines inputs total {PARALLEL_BYTES >> 20} MB or more, else 1)",
    )
    parser.add_argument(
        "--max-document-size",
        type=integer(1, MAX_INT),
        default=MAX_DOCUMENT,
        metavar="BYTES",
        help="longest line or whole-file document read; a longer one is reported and skipped "
        "(default: %(default)s, 16 MiB)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, tuning: Tuning = Tuning()) -> int:
    """Validate every input named in ``args``; return the exit code."""
    sources = expand_inputs(args.paths)
    out = None if args.quiet else _writer(args.format)
    validation = Validation(
        sources,
        strict=args.strict,
        out=out,
        settle_every=tuning.settle_every,
        limit=args.max_document_size,
        keep=tuning.keep_operations,
    )
    jobs = args.jobs or auto_jobs(sources, tuning.parallel_bytes)
    chunks = plan_chunks(sources, tuning.chunk_bytes, limit=args.max_document_size) if jobs > 1 else []
    ticker = Ticker("d1sim validate", lambda: validation.operations, "operations")
    try:
        # The ticker's thread starts after the workers: they are forked only from a lone thread.
        with ChunkPipeline(chunks, jobs, args.strict, _warn) as pipeline, ticker:
            for index, source in enumerate(sources):
                if index in pipeline.indexes:
                    validation.check_chunks(index, pipeline.results_of(index))
                else:
                    validation.check_source(index, source)
                if args.per_file:
                    validation.finish()
        validation.finish()
    finally:
        gc.unfreeze()
    print(validation.summary(), file=sys.stderr)
    return validation.exit_code()


def _warn(message: str) -> None:
    print(f"d1sim validate: warning: {message}", file=sys.stderr)


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
