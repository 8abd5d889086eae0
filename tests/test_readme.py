"""The README stays true: its diagram and scenario table are what the data generates, and its
Quickstart is the two lines CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from d1sim.contracts.lifecycle import load_lifecycle
from d1sim.contracts.lifecycle.render import render_mermaid
from d1sim.contracts.scenario.loading import bundled_scenarios

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_readme_diagram_is_generated_from_the_model() -> None:
    block = re.search(r"```mermaid\n(.*?)```", README, re.S)
    assert block is not None
    assert block.group(1) == render_mermaid(load_lifecycle()).rstrip("\n") + "\n"


def test_every_bundled_scenario_is_in_the_readme_with_its_description() -> None:
    for name, description in bundled_scenarios().items():
        assert f"| `{name}` | {description} |" in README


def test_quickstart_is_two_lines_demo_then_test() -> None:
    section = README.split("## Quickstart", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S)
    assert block is not None
    assert block.group(1).splitlines() == ["make demo", "make test"]
