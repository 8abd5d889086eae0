"""Checks of what a receiver holds after at-least-once, unordered delivery (docs/d1-produce.md sections 2, 6).

Both send one card's lifecycle one operation per POST, as D1 does, and read the receiver's
state through the probe. The expected state is :func:`d1sim.contracts.lifecycle.convergence.converge` of what
was sent: the rule the reference receiver and the simulator share.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from d1sim.contracts.checks.model import CheckFailure
from d1sim.contracts.checks.registry import check
from d1sim.contracts.checks.trial import ACCEPTED, Trial, one_per_post
from d1sim.contracts.lifecycle.model import load_lifecycle
from d1sim.contracts.strategies import arrival_orders, lifecycles, shuffled_lifecycles
from d1sim.contracts.strategies.features import reorders

Operation = dict[str, Any]
Duplicated = tuple[list[Operation], int]


def _duplicated_lifecycles() -> SearchStrategy[Duplicated]:
    """A lifecycle in true order and the index of the notification D1 delivers again."""
    return lifecycles().flatmap(lambda ops: st.tuples(st.just(ops), st.integers(0, len(ops) - 1)))


@check("idempotent_on_duplicates", strategy=lambda ctx: _duplicated_lifecycles())
def idempotent_on_duplicates(trial: Trial, example: Duplicated) -> CheckFailure | None:
    """The same notification delivered again gets 2xx and changes nothing."""
    operations, again = trial.fresh_operations(example[0]), example[1]
    bodies = one_per_post(operations)
    for i, body in enumerate(bodies, 1):
        reply = trial.post(body, label=f"status {i} of {len(bodies)}")
        if not trial.accepted(reply):
            return trial.fail(reply, ACCEPTED)
    # Wait for an asynchronous receiver to settle; a receiver that holds another state than the
    # rule's is converges_out_of_order's business: here only a change by the duplicate counts.
    unsettled = trial.state_mismatch(operations)
    before = _held(trial, operations) if unsettled else None
    reply = trial.post(bodies[again], label=f"status {again + 1} delivered again (byte for byte)")
    if not trial.accepted(reply):
        return trial.fail(reply, ACCEPTED + "; a duplicate is a success, not a conflict")
    expected = "the held state unchanged by a duplicate"
    if before is None:
        changed = trial.state_mismatch(operations)
        return trial.fail(f"after the duplicate: {changed}", expected) if changed else None
    after = _held(trial, operations)
    if after != before:
        return trial.fail(f"the duplicate changed the state: before {before}, after {after}", expected)
    return None


def _held(trial: Trial, operations: list[Operation]) -> dict[str, Any]:
    """Each card's held status and shipment (what the contract lets a probe show)."""
    cards = dict.fromkeys(op["cardId"] for op in operations)
    held = {card: trial.held(card) for card in cards}
    return {card: state and {k: state.get(k) for k in ("status", "shipment")} for card, state in held.items()}


def _arrivals() -> SearchStrategy[tuple[list[Operation], list[Operation]]]:
    """Lifecycles of any length, or shipped ones with 2-5 shipment reports (whether updates are
    ordered by lastUpdatedAt only shows with several), or a re-order of a card after its first
    order failed or was cancelled (whether startTime decides between orders)."""
    model = load_lifecycle()
    shipped = shuffled_lifecycles(model.main_path, max_updates=4, duplicates=False).filter(
        lambda pair: len(pair[0]) > len(model.main_path)
    )
    reordered = reorders().flatmap(
        lambda ops: arrival_orders(ops, duplicates=False).map(lambda arrival: (ops, arrival)))
    return st.one_of(shuffled_lifecycles(duplicates=False), shipped, reordered)


@check("converges_out_of_order", strategy=lambda ctx: _arrivals(), needs_state=True)
def converges_out_of_order(
    trial: Trial, example: tuple[list[Operation], list[Operation]]
) -> CheckFailure | None:
    """Any arrival order of one card's notifications ends in the state of the truly last one."""
    arrival = trial.fresh_operations(example[1])
    bodies = one_per_post(arrival)
    for i, body in enumerate(bodies, 1):
        reply = trial.post(body, label=f"arrival {i} of {len(bodies)}")
        if not trial.accepted(reply):
            return trial.fail(reply, ACCEPTED)
    mismatch = trial.state_mismatch(arrival)
    expected = (
        "the highest-ranked status, and for a shipped card the shipment with the latest "
        "lastUpdatedAt, whatever the arrival order"
    )
    return trial.fail(mismatch, expected) if mismatch else None
