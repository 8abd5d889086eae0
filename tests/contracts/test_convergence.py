"""The convergence rule returns the truly last state, whatever the arrival order."""

from __future__ import annotations

import copy

from hypothesis import given
from hypothesis import strategies as st

from d1sim.contracts.lifecycle.convergence import CardState, converge
from d1sim.contracts.lifecycle.matching import compare_state
from d1sim.contracts.lifecycle.model import load_lifecycle
from d1sim.contracts.payloads.factory import PayloadFactory

PATHS = sorted(load_lifecycle().paths())


@given(path=st.sampled_from(PATHS), seed=st.integers(0, 2**16), updates=st.integers(0, 4), data=st.data())
def test_any_permutation_converges_to_the_last_state(path: tuple[str, ...], seed: int, updates: int,
                                                      data: st.DataObject) -> None:
    ops = PayloadFactory(seed).lifecycle(path, shipment_updates=updates)
    arrival = data.draw(st.permutations(ops)) + data.draw(st.lists(st.sampled_from(ops), max_size=3))
    [state] = converge(arrival).values()
    truly_last = ops[-1]
    assert state.status == truly_last["details"]["status"]
    if state.status == "CARD_SHIPPED":
        assert state.shipment == truly_last["details"]["shipment"]
    else:
        assert state.shipment is None


def test_unknown_statuses_never_move_the_state() -> None:
    factory = PayloadFactory(4)
    order = factory.new_order()
    ops = [factory.operation(order, s, order.start) for s in ("DATA_PREPARED", "CARD_PROD_QUALITY_CHECK")]
    assert converge(ops)[order.card_id].status == "DATA_PREPARED"
    assert converge(ops[1:]) == {}


def test_the_newest_order_of_a_card_wins() -> None:
    factory = PayloadFactory(5)
    old = factory.lifecycle(["CARD_PROD_REQUESTED", "CARD_PROD_CANCELED"], card_id="card-1")
    new = factory.lifecycle(["CARD_PROD_REQUESTED"], card_id="card-1",
                            start=factory.start.replace(year=2026))
    assert converge(new + old)["card-1"].status == "CARD_PROD_REQUESTED"


def test_cards_are_kept_apart() -> None:
    factory = PayloadFactory(6)
    a = factory.lifecycle(["CARD_PROD_REQUESTED", "DATA_EXCEPTION"])
    b = factory.lifecycle(shipment_updates=1)
    states = converge(b + a)
    assert {s.status for s in states.values()} == {"DATA_EXCEPTION", "CARD_SHIPPED"}


def test_compare_state_explains_mismatches() -> None:
    expected = CardState("c1", "CARD_SHIPPED", {"lastUpdatedAt": "2026-05-22T13:55:00Z", "status": "DELIVERED"})
    assert compare_state(expected, expected.as_probe()) is None
    merged = copy.deepcopy(expected.as_probe())
    merged["shipment"]["carrier"] = "fedex"  # a receiver may keep fields of earlier updates
    assert compare_state(expected, merged) is None
    assert "does not know" in str(compare_state(expected, None))
    assert "held 'CARD_PROD_DONE'" in str(compare_state(expected, {"cardId": "c1", "status": "CARD_PROD_DONE"}))
    stale = {"cardId": "c1", "status": "CARD_SHIPPED", "shipment": {"status": "IN_TRANSIT"}}
    assert "DELIVERED" in str(compare_state(expected, stale))
