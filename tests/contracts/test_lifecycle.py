"""The lifecycle model is data: loaded from the JSON document, checked against its schema."""

from __future__ import annotations

import copy

import pytest

from d1sim.contracts.lifecycle.model import LifecycleModelError, lifecycle_from_document, load_lifecycle
from d1sim.contracts.notification.documents import load_document


def test_model_matches_the_reference_table() -> None:
    model = load_lifecycle()
    assert model.initial == "CARD_PROD_REQUESTED"
    assert [model.operation_status(s) for s in model.main_path] == ["PENDING"] * 5 + ["SUCCESSFUL"]
    assert model.operation_status("DATA_EXCEPTION") == model.operation_status("CARD_PROD_CANCELED") == "FAILED"
    assert [model.rank(s) for s in model.main_path] == [0, 1, 2, 3, 4, 5]
    assert {s for s in model.states if model.is_terminal(s)} == {"CARD_SHIPPED", "DATA_EXCEPTION", "CARD_PROD_CANCELED"}


@pytest.mark.parametrize(
    ("before", "after", "allowed"),
    [
        ("CARD_PROD_REQUESTED", "DATA_PREPARED", True),
        ("DATA_PREPARED", "DATA_EXCEPTION", True),  # the seed's bulk example
        ("CARD_PROD_DONE", "CARD_PROD_CANCELED", True),
        ("CARD_SHIPPED", "CARD_SHIPPED", True),
        ("CARD_PROD_READY", "DATA_EXCEPTION", False),
        ("CARD_SHIPPED", "CARD_PROD_CANCELED", False),
        ("CARD_PROD_DONE", "CARD_PROD_READY", False),
    ],
)
def test_may_follow(before: str, after: str, allowed: bool) -> None:
    assert load_lifecycle().may_follow(before, after) is allowed


def test_reachable_and_skipped() -> None:
    model = load_lifecycle()
    assert model.reachable("CARD_PROD_REQUESTED", "CARD_SHIPPED")
    assert not model.reachable("CARD_SHIPPED", "DATA_EXCEPTION")
    assert model.skipped("CARD_PROD_READY", "CARD_PROD_DONE") == ["CARD_PROD_ONGOING"]


def test_every_path_starts_initial_and_ends_terminal() -> None:
    model = load_lifecycle()
    paths = list(model.paths())
    assert len(paths) == 8
    for path in paths:
        assert path[0] == model.initial and model.is_terminal(path[-1])
        assert all(model.may_follow(a, b) for a, b in zip(path, path[1:], strict=False))


def test_a_new_status_is_a_new_row() -> None:
    doc = copy.deepcopy(load_document("produce-lifecycle.json"))
    doc["states"].append({"name": "CARD_PROD_QUALITY_CHECK", "meaning": "QA", "operationStatus": "PENDING",
                          "rank": 4, "terminal": False})
    doc["transitions"].append({"from": "CARD_PROD_QUALITY_CHECK", "to": ["CARD_SHIPPED"]})
    model = lifecycle_from_document(doc)
    assert model.is_known("CARD_PROD_QUALITY_CHECK")
    assert model.reachable("CARD_PROD_QUALITY_CHECK", "CARD_SHIPPED")


def test_a_broken_model_is_refused_with_its_location() -> None:
    doc = copy.deepcopy(load_document("produce-lifecycle.json"))
    doc["states"][0]["operationStatus"] = "DONE"
    with pytest.raises(LifecycleModelError, match="/states/0/operationStatus"):
        lifecycle_from_document(doc)
    doc = copy.deepcopy(load_document("produce-lifecycle.json"))
    doc["transitions"].append({"from": "CARD_PROD_DONE", "to": ["CARD_LOST"]})
    with pytest.raises(LifecycleModelError, match="CARD_LOST"):
        lifecycle_from_document(doc)
