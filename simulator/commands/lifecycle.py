"""``d1sim lifecycle``: print the PRODUCE lifecycle model as a table, Mermaid or JSON.

Everything printed is generated from ``schemas/produce-lifecycle.json``.

Example::

    d1sim lifecycle --format mermaid > docs/lifecycle.mmd
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from d1sim.contracts.lifecycle import load_lifecycle
from d1sim.contracts.lifecycle.render import render_json, render_mermaid, render_table
from d1sim.simulator.errors import EXIT_OK

RENDERERS = {"table": render_table, "mermaid": render_mermaid, "json": render_json}


def add_parser(subparsers: Any) -> None:
    """Register ``lifecycle`` on the ``d1sim`` parser."""
    parser = subparsers.add_parser(
        "lifecycle",
        help="print the PRODUCE lifecycle model (table, Mermaid state diagram or JSON)",
        description="Print the PRODUCE lifecycle model, generated from produce-lifecycle.json.",
    )
    parser.add_argument(
        "--format",
        choices=tuple(RENDERERS),
        default="table",
        help="table (default), mermaid (stateDiagram-v2) or json (the model)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the model in the chosen format."""
    sys.stdout.write(RENDERERS[args.format](load_lifecycle()) + "\n")
    return EXIT_OK
