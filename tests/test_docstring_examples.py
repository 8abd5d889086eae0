"""The ``>>>`` examples in d1sim's docstrings run, so an example never shows what the code no longer does.

Collected by module name (``d1sim.contracts...``), not by file, so each example imports the same
modules a user's code would.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import d1sim.contracts
import d1sim.simulator

ROOT = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Locust's entry file monkey-patches the whole process with gevent when imported: never here.
NOT_IMPORTED = {"d1sim.simulator.load.locustfile"}


def module_names() -> list[str]:
    names = ["d1sim.contracts", "d1sim.simulator"]
    for package in (d1sim.contracts, d1sim.simulator):
        names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return sorted(name for name in names if not name.endswith("__main__") and name not in NOT_IMPORTED)


def collect() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)  # only what each module defines itself
    examples = []
    for name in module_names():
        module = importlib.import_module(name)
        examples += [t for t in finder.find(module, name) if t.examples]
    return sorted(examples, key=lambda t: t.name)


EXAMPLES = collect()


def test_the_examples_are_collected() -> None:
    names = {t.name for t in EXAMPLES}
    assert {"d1sim.contracts.lifecycle.model", "d1sim.simulator.check.transport"} <= names
    assert len(names) == len(EXAMPLES), "an example is collected twice"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda t: t.name)
def test_docstring_example(example: doctest.DocTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # examples name files relative to the checkout (tests/data/...)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    result = runner.run(example, out=report.append, clear_globs=True)
    assert result.failed == 0, "".join(report)
