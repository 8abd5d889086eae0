"""The ``d1sim`` command: parses arguments and hands each sub-command to its module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import d1sim
from d1sim.simulator.cli.unknown_options import reject_unknown
from d1sim.simulator.errors import EXIT_USAGE, UsageError

# Command -> the module whose ``add_parser(subparsers)`` registers it (``func(args) -> int``).
COMMANDS = {
    "validate": "d1sim.simulator.cli.validate",
    "lifecycle": "d1sim.simulator.cli.lifecycle",
    "receiver": "d1sim.simulator.cli.receiver",
    "check": "d1sim.simulator.cli.check",
    "replay": "d1sim.simulator.cli.replay",
    "runs": "d1sim.simulator.cli.runs",
    "deliveries": "d1sim.simulator.cli.runs",
    "demo": "d1sim.simulator.cli.demo",
    "serve": "d1sim.simulator.cli.serve",
    "export": "d1sim.simulator.cli.export",
    "ui": "d1sim.simulator.cli.ui",
    "scenario": "d1sim.simulator.cli.scenario",
    "load": "d1sim.simulator.cli.load",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))
# Command -> a light module whose ``start(words)`` begins work that overlaps the command's imports
# and whose ``release()`` lets go of what the command did not take.
EARLY = {"replay": "d1sim.simulator.replay.ahead"}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the named command's module is imported when ``argv`` names one.

    Importing every command pulls in Flask, httpx and hypothesis: about 0.4 s and 20 MB that
    a ``d1sim validate`` of a large capture would pay for nothing.
    """
    parser = argparse.ArgumentParser(
        prog="d1sim",
        description="Contract, simulator and conformance checker for Thales D1 PRODUCE webhooks.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show d1sim's version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    first = next((word for word in argv if not word.startswith("-")), None)
    if first is None and "--version" in argv:
        return parser  # nothing else to parse: skip importing every command
    for name in (COMMANDS[first],) if first in COMMANDS else COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


class _Version(argparse.Action):
    """``--version``: the installed metadata is read only when asked (start-up stays cheap)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"d1sim {d1sim.__version__}")  # on stdout, as argparse's own version action does
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``d1sim``; return the exit code (0 ok, 1 failed expectation, 2 usage/input error)."""
    words = list(sys.argv[1:] if argv is None else argv)
    early = importlib.import_module(EARLY[words[0]]) if words and words[0] in EARLY else None
    if early is not None:
        early.start(words[1:])
    try:
        parser = build_parser(words)
        args, extras = parser.parse_known_args(words)
        if extras:
            reject_unknown(parser, args, extras)
        return run(args)
    finally:
        if early is not None:
            early.release()  # what the command did not take (a usage error, --help)


def run(args: argparse.Namespace) -> int:
    """Run the parsed command ``args.func``; usage errors and interrupts become exit codes."""
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
