"""The ``d1sim`` command: parses arguments and hands each sub-command to its module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from simulator.errors import EXIT_USAGE, UsageError

# Each entry is a module with ``add_parser(subparsers)`` that sets ``func(args) -> int``.
COMMAND_MODULES = (
    "simulator.commands.validate",
    "simulator.commands.lifecycle",
    "simulator.commands.receiver",
    "simulator.commands.check",
    "simulator.commands.replay",
    "simulator.commands.runs",
    "simulator.commands.demo",
    "simulator.commands.serve",
    "simulator.commands.export",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="d1sim",
        description="Contract, simulator and conformance checker for Thales D1 PRODUCE webhooks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``d1sim``; return the exit code (0 ok, 1 failed expectation, 2 usage/input error)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"d1sim {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"d1sim {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
