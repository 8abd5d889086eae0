"""The contract-space strategies stay valid while they explore, and name what they exercise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from d1sim.contracts.lifecycle.convergence import converge
from d1sim.contracts.lifecycle.matching import parse_instant
from d1sim.contracts.notification.validation import validate_notification
from d1sim.contracts.strategies.features import (
    FEATURES,
    TIMESTAMP_FORMS,
    Featured,
    featured_batches,
    featured_notifications,
    reformat_times,
    reorders,
)
from d1sim.contracts.strategies.payloads import notifications


@settings(max_examples=60)
@given(featured_batches(2, 6))
def test_every_featured_batch_is_valid_within_the_batch_size(drawn: Featured) -> None:
    assert not validate_notification(drawn.body)
    assert 2 <= len(drawn.body["operations"]) <= 6
    assert all(f.startswith(FEATURES) for f in drawn.features)


@settings(max_examples=30)
@given(featured_notifications())
def test_a_featured_notification_is_one_valid_operation(drawn: Featured) -> None:
    assert not validate_notification(drawn.body) and len(drawn.body["operations"]) == 1
    assert drawn.features in ((), ) or drawn.features[0].startswith(TIMESTAMP_FORMS)


@settings(max_examples=30)
@given(notifications(1, 3), st.sampled_from(["no fraction, Z", "+00:00", "offset -05:30"]))
def test_reformatted_times_are_the_same_instants_to_the_millisecond(body: dict, form: str) -> None:
    again = reformat_times(body, form)
    before = [parse_instant(op["startTime"]) for op in body["operations"]]
    after = [parse_instant(op["startTime"]) for op in again["operations"]]
    if form == "no fraction, Z":
        before = [b.replace(microsecond=0) for b in before if b]
    assert after == before


@settings(max_examples=40)
@given(reorders())
def test_a_reorder_is_a_later_order_of_the_same_card_that_wins(ops: list) -> None:
    assert not validate_notification({"operations": ops})
    orders = list(dict.fromkeys(op["operationId"] for op in ops))
    assert len(orders) == 2 and len({op["cardId"] for op in ops}) == 1
    assert converge(ops)[ops[0]["cardId"]].operation_id == orders[1]
