"""The package layout: a room per subsystem, each saying what it holds, imports that only go one way."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contracts", "simulator")
# Function-local imports of d1sim modules that stay, and why (none of them dodges a cycle).
LAZY = {
    # An integrator's pytest loads the plugin on every run: pay for the checker only when used.
    "d1sim.simulator.check.plugin",
    # create_app needs no server; waitress is loaded only by the helper that serves it.
    "d1sim.simulator.receiver.app",
    # build_auth pulls in httpx, which `d1sim validate` never needs.
    "d1sim.simulator.cli.options",
    # --db is optional: the UI's result tables load only when a verdict is recorded.
    "d1sim.simulator.cli.check",
    "d1sim.simulator.cli.demo",
    # Only --state-url needs the checker's HTTP probe (and hypothesis, which it loads).
    "d1sim.simulator.cli.replay",
    # A replay's start-up and its sender processes load no faker, jsonschema or httpx: the
    # forked planner expands (faker), a fault loads the factory when it is applied, validating
    # a notification loads jsonschema, and only an injected or token client loads httpx.
    "d1sim.contracts.notification",
    "d1sim.contracts.scenario.faults",
    "d1sim.simulator.replay.run",
    "d1sim.simulator.delivery.sender",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(("d1sim", *(p for p in parts if p != "__init__")))


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def module_level_imports(tree: ast.Module) -> Iterator[str]:
    """The d1sim modules (and names) a module imports when loaded, or for type checking."""
    for node in _top_level(tree.body):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("d1sim."):
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("d1sim."))


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    for node in body:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` hides a cycle from Python, not from us
            yield from _top_level(node.body)
        else:
            yield node


def import_graph() -> dict[str, set[str]]:
    trees = {module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in source_files()}
    return {name: (set(module_level_imports(tree)) & trees.keys()) - {name} for name, tree in trees.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize(
    "folder", sorted({p.parent for p in source_files()}), ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_room_says_what_it_holds(folder: Path) -> None:
    init = folder / "__init__.py"
    assert init.is_file(), f"{folder.relative_to(ROOT)} is not a package"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc and len(doc.splitlines()) >= 2, f"{init.relative_to(ROOT)} needs a docstring saying what the room holds"


def test_no_module_name_repeats_a_room_prefix() -> None:
    prefixed = [
        str(p.relative_to(ROOT))
        for p in source_files()
        if p.stem.startswith(("validate_", "scenario_", "replay_", "receiver_", "contract_", "check_"))
    ]
    assert prefixed == [], "a file-name prefix says a folder is missing"


def test_imports_form_no_cycle() -> None:
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"d1sim.a": {"d1sim.b"}, "d1sim.b": {"d1sim.c"}, "d1sim.c": {"d1sim.a"}}
    assert find_cycle(graph) == ["d1sim.a", "d1sim.b", "d1sim.c", "d1sim.a"]


def test_no_import_hides_in_a_function_except_the_lazy_ones() -> None:
    hidden = []
    for path in source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom) and (sub.module or "").startswith("d1sim."):
                    hidden.append((module_name(path), sub.lineno, sub.module))
    assert [h for h in hidden if h[0] not in LAZY] == []
