"""Lifecycle facts as data: factory, strategies and the mock D1 follow the model's columns.

Which fields a state carries (dueDate/productionSite, errorCode/error, reason) is a column of
``schemas/produce-lifecycle.json``; every generator must agree with it, for every state.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from d1sim.contracts.lifecycle.model import LifecycleModelError, State, lifecycle_from_document, load_lifecycle
from d1sim.contracts.notification.documents import load_document
from d1sim.contracts.payloads.factory import PayloadFactory
from d1sim.contracts.strategies import lifecycles, operations
from d1sim.simulator.d1.orders import cancel_operation

MODEL = load_lifecycle()
FACTS = ("dueDate", "productionSite")


def carried(op: Mapping[str, Any]) -> dict[str, Any]:
    """What an operation says about the columns: facts present, error present, reason text."""
    details = op["details"]
    return {
        "facts": all(k in details for k in FACTS),
        "some facts": any(k in details for k in FACTS),
        "errorCode": "errorCode" in op and "error" in op,
        "some error": "errorCode" in op or "error" in op,
        "reason": details.get("reason"),
    }


def facts_known_before(path: list[str], index: int) -> bool:
    return any(MODEL.states[s].carries_production_facts(False) for s in path[:index])


def test_the_one_truth_for_the_two_failure_states() -> None:
    """docs/decisions.md: a cancel is no error of D1; a data exception is, and has no order facts."""
    cancel, exception = MODEL.states["CARD_PROD_CANCELED"], MODEL.states["DATA_EXCEPTION"]
    assert MODEL.cancel == "CARD_PROD_CANCELED"
    assert (cancel.operation_status, cancel.error_code, cancel.production_facts) == ("FAILED", False, "ifKnown")
    assert (exception.operation_status, exception.error_code, exception.production_facts) == ("FAILED", True, "never")
    assert cancel.reason and exception.reason and cancel.reason != exception.reason


@pytest.mark.parametrize("state", list(MODEL.states.values()), ids=list(MODEL.states))
@pytest.mark.parametrize("known", [False, True], ids=["fresh order", "facts known"])
def test_the_factory_gives_each_state_exactly_its_columns(state: State, known: bool) -> None:
    factory = PayloadFactory(seed=5)
    order = factory.new_order()
    order.facts_known = known
    got = carried(factory.operation(order, state.name, order.start))
    assert got["facts"] == got["some facts"] == state.carries_production_facts(known)
    assert got["errorCode"] == got["some error"] == state.error_code
    assert got["reason"] == state.reason


def test_the_factory_follows_the_columns_along_every_path_of_the_model() -> None:
    factory = PayloadFactory(seed=9)
    for path in MODEL.paths():
        for i, op in enumerate(factory.lifecycle(list(path), shipment_updates=1)):
            state = MODEL.states[op["details"]["status"]]
            assert carried(op)["facts"] == state.carries_production_facts(facts_known_before(list(path), i))


@given(operations())
def test_a_drawn_operation_carries_only_what_its_columns_allow(op: dict[str, Any]) -> None:
    state = MODEL.states[op["details"]["status"]]
    got = carried(op)
    assert got["facts"] == got["some facts"]  # the two facts come together
    assert not got["facts"] or state.production_facts != "never"
    assert got["errorCode"] == got["some error"] and (not got["errorCode"] or state.error_code)
    assert got["reason"] in (None, state.reason)


@given(lifecycles())
def test_a_drawn_lifecycle_repeats_the_facts_only_once_known(ops: list[dict[str, Any]]) -> None:
    path = [op["details"]["status"] for op in ops]
    for i, op in enumerate(ops):
        state = MODEL.states[path[i]]
        assert not carried(op)["facts"] or state.carries_production_facts(facts_known_before(path, i))


@given(st.data())
def test_the_factory_and_the_strategies_agree_on_what_a_state_carries(data: st.DataObject) -> None:
    """A drawn operation carries a subset of what the factory gives the same state, same texts."""
    status = data.draw(st.sampled_from(list(MODEL.states)))
    drawn = carried(data.draw(operations(status)))
    factory = PayloadFactory(seed=1)
    order = factory.new_order()
    order.facts_known = True
    made = carried(factory.operation(order, status, order.start))
    for column in ("facts", "errorCode"):
        assert made[column] or not drawn[column]
    assert drawn["reason"] in (None, made["reason"])


@pytest.mark.parametrize("previous", ["CARD_PROD_REQUESTED", "CARD_PROD_DONE"])
def test_the_mock_d1_cancel_follows_the_cancel_column(previous: str) -> None:
    factory = PayloadFactory(seed=3)
    path = list(MODEL.main_path[: MODEL.main_path.index(previous) + 1])
    last = factory.lifecycle(path)[-1]
    cancel = cancel_operation(last, datetime(2025, 3, 2, tzinfo=UTC), MODEL)
    state = MODEL.states[MODEL.cancel or ""]
    assert cancel["details"]["status"] == state.name and cancel["status"] == state.operation_status
    known = facts_known_before(path + [state.name], len(path))
    assert carried(cancel)["facts"] == state.carries_production_facts(known)
    assert carried(cancel)["reason"] == state.reason and not carried(cancel)["some error"]


def test_a_column_that_contradicts_the_rules_is_refused() -> None:
    doc = copy.deepcopy(load_document("produce-lifecycle.json"))
    doc["states"][0]["errorCode"] = True
    with pytest.raises(LifecycleModelError, match="CARD_PROD_REQUESTED carries errorCode but is PENDING"):
        lifecycle_from_document(doc)
    doc = copy.deepcopy(load_document("produce-lifecycle.json"))
    doc["cancel"] = "CARD_PROD_DONE"
    with pytest.raises(LifecycleModelError, match="cancel state CARD_PROD_DONE must be terminal"):
        lifecycle_from_document(doc)
    doc["cancel"] = "CARD_LOST"
    with pytest.raises(LifecycleModelError, match="CARD_LOST"):
        lifecycle_from_document(doc)
    doc = copy.deepcopy(load_document("produce-lifecycle.json"))
    doc["states"][0]["productionFacts"] = "sometimes"
    with pytest.raises(LifecycleModelError, match="/states/0/productionFacts"):
        lifecycle_from_document(doc)
