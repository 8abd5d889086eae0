"""One source of each protocol constant: contracts/protocol.py, and no copies elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from d1sim.contracts import protocol

ROOT = Path(__file__).resolve().parents[2]
LITERALS = {
    protocol.DEFAULT_ISSUER_ID: "DEFAULT_ISSUER_ID",
    "/notifications/d1/v2": "WEBHOOK_PATH",
    protocol.ADMIN_PREFIX: "ADMIN_PREFIX",
    protocol.BANKING_PREFIX: "BANKING_PREFIX",
    protocol.SCENARIO_HEADER: "SCENARIO_HEADER",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings (they may show the values in examples)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _copies(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} retypes {name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        for literal, name in LITERALS.items()
        if literal in node.value
    ]


@pytest.mark.parametrize("room", ["contracts", "simulator"])
def test_protocol_constants_are_defined_once(room: str) -> None:
    copies = [
        copy
        for path in sorted((ROOT / room).rglob("*.py"))
        if path.name != "protocol.py"
        for copy in _copies(path)
    ]
    assert copies == []


def test_the_webhook_path_is_d1s() -> None:
    assert protocol.webhook_path("ISSUER0001") == "/notifications/d1/v2/issuers/ISSUER0001/cards"
