"""Rendering the lifecycle model: whatever the model says, the outputs say, and nothing else."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from d1sim.contracts.lifecycle.model import Lifecycle, lifecycle_from_document, load_lifecycle
from d1sim.contracts.lifecycle.render import render_json, render_mermaid, render_table


@pytest.fixture
def extended() -> Lifecycle:
    """The shipped model plus a made-up state (with separators in its meaning)."""
    document: dict[str, Any] = copy.deepcopy(load_lifecycle().document)
    document["states"].append(
        {
            "name": "CARD_PROD_QUALITY_CHECK",
            "meaning": "Checked: ok; next.",
            "operationStatus": "PENDING",
            "rank": 4,
            "terminal": False,
        }
    )
    document["transitions"].append({"from": "CARD_PROD_QUALITY_CHECK", "to": ["CARD_PROD_DONE"]})
    return lifecycle_from_document(document)


def test_table_has_one_row_per_state_in_rank_order() -> None:
    model = load_lifecycle()
    lines = render_table(model).splitlines()
    rows = lines[2 : 2 + len(model.states)]
    assert [row.split()[0] for row in rows] == sorted(
        model.states, key=lambda n: (model.rank(n), n)
    )
    assert set(lines[1]) == {"-", " "}


def test_a_new_state_appears_without_code_changes(extended: Lifecycle) -> None:
    table, diagram = render_table(extended), render_mermaid(extended)
    assert "CARD_PROD_QUALITY_CHECK  PENDING" in table and "CARD_PROD_QUALITY_CHECK" in diagram
    assert "    CARD_PROD_QUALITY_CHECK --> CARD_PROD_DONE" in diagram.splitlines()


def test_mermaid_labels_never_carry_separators(extended: Lifecycle) -> None:
    for line in render_mermaid(extended).splitlines():
        label = line.partition(" : ")[2]
        assert ";" not in line and ":" not in label


def test_each_transition_is_drawn_once() -> None:
    model = load_lifecycle()
    arrows = [line for line in render_mermaid(model).splitlines() if " --> " in line]
    expected = sum(len(targets) for targets in model.successors.values())
    terminals = sum(state.terminal for state in model.states.values())
    assert len(arrows) == len(set(arrows)) == expected + terminals + 1


def test_json_round_trips_the_document() -> None:
    model = load_lifecycle()
    assert json.loads(render_json(model)) == model.document
