"""The core stays pure: nothing under contracts/ imports an edge or touches the outside world.

An AST walk over every core module fails on edge imports (web, HTTP, CLI, storage), file I/O
outside the one loader module (``contracts/notification/documents.py``), the clock, unseeded randomness and
threads. A subprocess imports the whole core with file reading disabled: no module reads data
at import time. Each rule is proven to bite on a small bad snippet.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CORE = Path(__file__).parents[2] / "contracts"
LOADER = "notification/documents.py"  # the data boundary: the only core module that reads files

EDGE_MODULES = {"flask", "werkzeug", "waitress", "requests", "httpx", "urllib3", "sqlite3",
                "argparse", "click", "rich", "simulator", "socket"}
# Whole modules the core has no business with: threads, processes, the clock, the OS, entropy.
IMPURE_MODULES = {
    "threading": "threads", "_thread": "threads", "multiprocessing": "processes",
    "concurrent": "threads", "subprocess": "processes", "time": "the clock", "os": "the OS",
    "shutil": "file I/O", "tempfile": "file I/O", "glob": "file I/O", "secrets": "unseeded randomness",
}
LOADER_MAY = {"os"}  # the loader opens user files non-blocking (a FIFO must not hang a read)
FILE_IO_MODULES = {"importlib.resources": "file I/O", "importlib.metadata": "file I/O"}
FILE_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "open", "iterdir", "unlink",
                "mkdir", "touch", "rmdir"}
CLOCK_METHODS = {"now", "utcnow", "today"}
SEEDED = {"Random"}  # the only thing the core may take from ``random``: a generator it is given
UNSEEDED_UUIDS = {"uuid1", "uuid4"}
CACHES = {"cache", "lru_cache"}
# Caches that memoize pure values by their arguments (no data, no model): allowed by name.
PURE_MEMOS = {
    "strategies/values.py": frozenset({"between"}),
    "payloads/factory.py": frozenset({"_slots"}),  # where a pattern's digits and letters sit
    "payloads/times.py": frozenset({"_format_utc"}),  # a UTC moment's text
}
# The real clock as the *default* of a parameter that injects it (tests pass a fake one):
# allowed by module and by the exact offence, so any other clock use there still fails.
INJECTED_CLOCKS = {
    "checks/model.py": {"imports time (the clock)"},
    "lifecycle/settling.py": {"imports time (the clock)", "calls datetime.now() (the clock)"},
}


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def _import_offences(node: ast.AST, loader: bool) -> list[str]:
    found = []
    for name in _imported(node)[:1] if isinstance(node, ast.ImportFrom) else _imported(node):
        top = name.split(".")[0]
        if top in EDGE_MODULES or name.startswith("d1sim.simulator"):
            found.append(f"imports {name} (an edge)")
        elif top in IMPURE_MODULES and not (loader and top in LOADER_MAY):
            found.append(f"imports {name} ({IMPURE_MODULES[top]})")
    for name in _imported(node):
        if name in FILE_IO_MODULES and not loader:
            found.append(f"imports {name} ({FILE_IO_MODULES[name]} outside {LOADER})")
    if isinstance(node, ast.ImportFrom) and node.module == "random":
        found += [f"imports random.{a.name} (unseeded randomness)" for a in node.names if a.name not in SEEDED]
    if isinstance(node, ast.ImportFrom) and node.module == "uuid":
        found += [f"imports uuid.{a.name} (unseeded randomness)" for a in node.names if a.name in UNSEEDED_UUIDS]
    return found


def _call_offences(node: ast.Call, loader: bool) -> list[str]:
    func = node.func
    if isinstance(func, ast.Name) and func.id == "open" and not loader:
        return [f"calls open() (file I/O outside {LOADER})"]
    if not isinstance(func, ast.Attribute):
        return []
    owner = func.value.id if isinstance(func.value, ast.Name) else None
    if func.attr in FILE_METHODS and not loader:
        return [f"calls .{func.attr}() (file I/O outside {LOADER})"]
    if func.attr in CLOCK_METHODS and owner in {"datetime", "date"}:
        return [f"calls {owner}.{func.attr}() (the clock)"]
    if owner == "random" and func.attr not in SEEDED:
        return [f"calls random.{func.attr}() (unseeded randomness)"]
    if owner == "uuid" and func.attr in UNSEEDED_UUIDS:
        return [f"calls uuid.{func.attr}() (unseeded randomness)"]
    return []


def _decorator_name(decorator: ast.expr) -> str | None:
    """``cache`` for ``@cache``, ``@functools.cache`` and ``@lru_cache(...)`` alike."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return target.id
    return target.attr if isinstance(target, ast.Attribute) else None


def _cache_offences(node: ast.AST, loader: bool, memos: frozenset[str]) -> list[str]:
    """A process-wide functools cache belongs to the loader, unless it is a known pure memo."""
    if loader or not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name in memos:
        return []
    hidden = sorted({_decorator_name(d) for d in node.decorator_list} & CACHES)
    return [f"@{name} on {node.name} (a process-wide cache outside {LOADER})" for name in hidden]


def impurities(source: str, *, loader: bool = False, memos: frozenset[str] = frozenset()) -> list[str]:
    """What makes ``source`` impure, one ``line N: ...`` entry per offence."""
    found = []
    for node in ast.walk(ast.parse(source)):
        offences = _import_offences(node, loader) + _cache_offences(node, loader, memos)
        if isinstance(node, ast.Call):
            offences += _call_offences(node, loader)
        found += [f"line {getattr(node, 'lineno', 0)}: {offence}" for offence in offences]
    return found


def test_core_is_pure() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) >= 30
    offenders = {}
    for module in modules:
        name = module.relative_to(CORE).as_posix()
        found = impurities(module.read_text(encoding="utf-8"), loader=name == LOADER,
                           memos=PURE_MEMOS.get(name, frozenset()))
        allowed = INJECTED_CLOCKS.get(name, set())
        offenders[name] = [f for f in found if f.split(": ", 1)[1] not in allowed]
    assert {m: bad for m, bad in offenders.items() if bad} == {}


@pytest.mark.parametrize(
    ("snippet", "why"),
    [
        ("import flask", "an edge"),
        ("from d1sim.simulator.cli import main", "an edge"),
        ("data = open('x.json').read()", "file I/O"),
        ("from pathlib import Path\ntext = Path('x').read_text()", "file I/O"),
        ("from importlib import resources", "file I/O"),
        ("import importlib.resources", "file I/O"),
        ("from importlib import metadata", "file I/O"),
        ("import time\nstamp = time.time()", "the clock"),
        ("from datetime import datetime\nnow = datetime.now()", "the clock"),
        ("from datetime import date\nday = date.today()", "the clock"),
        ("import secrets\nbase = secrets.randbits(64)", "unseeded randomness"),
        ("import random\nx = random.random()", "unseeded randomness"),
        ("import random\nx = random.choice([1, 2])", "unseeded randomness"),
        ("from random import choice", "unseeded randomness"),
        ("from random import SystemRandom", "unseeded randomness"),
        ("import uuid\nname = uuid.uuid4()", "unseeded randomness"),
        ("from uuid import uuid4", "unseeded randomness"),
        ("import threading\nlock = threading.Lock()", "threads"),
        ("from concurrent.futures import ThreadPoolExecutor", "threads"),
        ("import multiprocessing", "processes"),
        ("def later():\n    import os\n    return os.environ", "the OS"),
        ("from functools import cache\n@cache\ndef model():\n    return {}", "process-wide cache"),
        ("import functools\n@functools.lru_cache(maxsize=4)\ndef model():\n    return {}", "process-wide cache"),
    ],
)
def test_the_purity_rules_bite(snippet: str, why: str) -> None:
    found = impurities(textwrap.dedent(snippet))
    assert found and all(why in offence for offence in found), found


def test_what_the_core_may_do_passes() -> None:
    allowed = """
        import re, uuid, json
        from random import Random
        from datetime import datetime, timedelta
        rng = Random(7)
        key = uuid.uuid5(uuid.NAMESPACE_URL, "x")
        moment = datetime.fromisoformat("2025-01-17T06:28:02+00:00") + timedelta(hours=1)
        fields = json.loads("{}")
    """
    assert impurities(textwrap.dedent(allowed)) == []
    assert impurities("from importlib import resources\ntext = resources.files('p').read_text()", loader=True) == []


IMPORT_WITH_FILES_DISABLED = """
import builtins, importlib, importlib.resources, pathlib, pkgutil
import faker.providers.misc, hypothesis.strategies, jsonschema, jsonschema_rs, orjson, referencing, yaml
import d1sim  # the package root (its version) is not the core

def refuse(*args, **kwargs):
    raise AssertionError(f"a core module reads a file at import time: {args!r}")

importlib.resources.files = refuse
builtins.open = refuse
pathlib.Path.read_text = pathlib.Path.read_bytes = refuse
import d1sim.contracts
for module in pkgutil.walk_packages(d1sim.contracts.__path__, "d1sim.contracts."):
    importlib.import_module(module.name)
print("imported", module.name)
"""


def test_no_core_module_reads_data_at_import_time() -> None:
    ran = subprocess.run([sys.executable, "-c", IMPORT_WITH_FILES_DISABLED], capture_output=True,
                         text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.startswith("imported d1sim.contracts.")
