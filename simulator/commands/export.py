"""``d1sim export``: print the OpenAPI or AsyncAPI document of D1's notifications and the mock D1.

Both documents are generated from the schemas shipped in ``schemas/`` (see
:mod:`d1sim.contracts.openapi.documents`), so they never drift from what d1sim checks.

Example::

    d1sim export openapi -o d1.openapi.json
    d1sim export asyncapi --format yaml > d1.asyncapi.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from d1sim.contracts.openapi.documents import build_asyncapi, build_openapi
from d1sim.simulator.errors import EXIT_OK, UsageError

DOCUMENTS: dict[str, Callable[[], dict[str, Any]]] = {"openapi": build_openapi, "asyncapi": build_asyncapi}


def add_parser(subparsers: Any) -> None:
    """Register ``export`` on the ``d1sim`` parser."""
    parser = subparsers.add_parser(
        "export",
        help="print the OpenAPI 3.1 or AsyncAPI 3.0 document (notification webhook, mock D1 API)",
        description="Print a contract document generated from the shipped schemas: openapi "
        "(the notification webhook and every path of d1sim serve) or asyncapi (the notification channel).",
    )
    parser.add_argument("document", choices=tuple(DOCUMENTS), help="which document")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    parser.add_argument("--format", choices=("json", "yaml"), default="json", help="json (default) or yaml")
    parser.set_defaults(func=run)


class _PlainDumper(yaml.SafeDumper):
    """Writes a subtree shared by several parents in full each time (no anchors, no aliases)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(document: dict[str, Any], fmt: str) -> str:
    """The document as JSON (indented) or YAML, ending with a newline."""
    if fmt == "yaml":
        return str(yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True))
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write(text: str, output: str | None) -> None:
    """Write ``text`` to ``output`` (stdout when None); an unwritable path is a usage error."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    """Build the chosen document and print or write it."""
    write(render(DOCUMENTS[args.document](), args.format), args.output)
    return EXIT_OK
