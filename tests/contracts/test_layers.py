"""The core stays pure: nothing under contracts/ imports an edge (web, HTTP, CLI, storage)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).parents[2] / "contracts"
FORBIDDEN = {"flask", "werkzeug", "waitress", "requests", "httpx", "urllib3", "sqlite3", "argparse",
             "click", "rich", "simulator", "socket"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_edge() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) >= 8
    offenders = {str(m.relative_to(CORE)): sorted(_imports(m) & FORBIDDEN) for m in modules}
    assert {m: bad for m, bad in offenders.items() if bad} == {}
