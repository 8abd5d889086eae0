"""``d1sim lifecycle``: the model as a table, a Mermaid diagram and JSON, all from the data."""

from __future__ import annotations

import json
import re

import pytest

from d1sim.contracts.lifecycle import load_lifecycle
from d1sim.simulator.cli import dispatch as cli


def lifecycle_output(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(["lifecycle", *argv]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_table_lists_every_state_with_its_facts_then_the_rules(capsys) -> None:
    out = lifecycle_output(capsys)
    model = load_lifecycle()
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()}
    for state in model.states.values():
        row = rows[state.name]
        assert state.operation_status in row and state.confidence in row and state.meaning in row
    assert "CARD_SHIPPED (repeat)" in rows["CARD_SHIPPED"]
    assert "Rules:" in out and "shipment.lastUpdatedAt" in out


def test_mermaid_has_every_state_and_every_transition(capsys) -> None:
    out = lifecycle_output(capsys, "--format", "mermaid")
    model = load_lifecycle()
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0] == "stateDiagram-v2"
    assert f"[*] --> {model.initial}" in lines
    for name in model.states:
        assert re.search(rf"\b{name}\b", out)
    edges = {tuple(line.split(" : ")[0].split(" --> ")) for line in lines if " --> " in line}
    for source, targets in model.successors.items():
        assert {(source, target) for target in targets} <= edges
    assert {(s.name, "[*]") for s in model.states.values() if s.terminal} <= edges
    assert "CARD_SHIPPED --> CARD_SHIPPED : shipment update (ordered by lastUpdatedAt)" in lines
    assert "class CARD_PROD_CANCELED,DATA_EXCEPTION failure" in lines


def test_json_is_the_model_document(capsys) -> None:
    assert json.loads(lifecycle_output(capsys, "--format", "json")) == load_lifecycle().document


def test_unknown_format_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["lifecycle", "--format", "svg"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'svg'" in capsys.readouterr().err
