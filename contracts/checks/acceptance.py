"""Checks that a receiver accepts what D1 may legitimately send: any valid, batched, newer or
leaner notification than the one it was written against (docs/d1-produce.md sections 2, 4 and 5).

Each check but ``accepts_batches`` sends one operation per POST, so that a receiver that only
breaks on batches fails ``accepts_batches`` and nothing else.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from d1sim.contracts.checks.model import CheckContext, CheckFailure
from d1sim.contracts.checks.registry import check
from d1sim.contracts.checks.trial import ACCEPTED, Trial, one_per_post
from d1sim.contracts.strategies import (
    lifecycles,
    minimal_notifications,
    notifications,
    unknown_statuses,
    with_unknown_fields,
)
from d1sim.contracts.strategies.features import (
    Featured,
    featured_batches,
    featured_notifications,
)

Operation = dict[str, Any]


def _post_all(trial: Trial, bodies: list[dict[str, Any]], what: str) -> CheckFailure | None:
    """POST each body in order; the failure of the first one not accepted."""
    for i, body in enumerate(bodies, 1):
        reply = trial.post(body, label=f"{what} {i} of {len(bodies)}")
        if not trial.accepted(reply):
            return trial.fail(reply, ACCEPTED)
    return None


@check("accepts_valid_notification", strategy=lambda ctx: featured_notifications())
def accepts_valid_notification(trial: Trial, drawn: Featured) -> CheckFailure | None:
    """Any schema-valid notification gets 2xx."""
    reply = trial.post(trial.fresh(drawn.body), label="notification" + drawn.label())
    return None if trial.accepted(reply) else trial.fail(reply, ACCEPTED)


Batches = tuple[Featured, list[int]]


def _batches(ctx: CheckContext) -> SearchStrategy[Batches]:
    """A featured batch, and which of its operations D1 delivers again in a second batch."""
    batches = featured_batches(min(2, ctx.max_batch), ctx.max_batch)
    return batches.flatmap(lambda drawn: st.tuples(st.just(drawn), st.lists(
        st.integers(0, len(drawn.body["operations"]) - 1), max_size=3, unique=True)))


@check("accepts_batches", strategy=_batches)
def accepts_batches(trial: Trial, example: Batches) -> CheckFailure | None:
    """A POST with many operations (up to the max, mixed cards) gets 2xx and all are applied."""
    drawn, again = example
    body = trial.fresh(drawn.body)
    operations = body["operations"]
    bodies = [(body, f"batch of {len(operations)} operations{drawn.label()}")]
    if again:  # the same operations again in a later batch: at-least-once delivery
        bodies.append(({"operations": [operations[i] for i in again]},
                       f"{len(again)} of them again in another batch"))
    for sent, label in bodies:
        reply = trial.post(sent, label=label)
        if not trial.accepted(reply):
            return trial.fail(reply, ACCEPTED)
    mismatch = trial.state_mismatch(operations)
    expected = "every operation of the batch applied (the state probe shows each card's latest)"
    return trial.fail(mismatch, expected) if mismatch else None


@st.composite
def lifecycles_with_unknown_status(draw: DrawFn) -> list[Operation]:
    """A lifecycle in true order with one unknown status inserted before a known one.

    The unknown operation belongs to the same order (operationId, cardId, startTime) and takes
    its operation status and endTime from the known operation before it, as D1 would send it.
    """
    ops: list[Operation] = draw(lifecycles())
    at = draw(st.integers(0, len(ops) - 1))  # at least one known status comes after it
    order, before = ops[at], ops[at - 1] if at else {"status": "PENDING"}
    unknown: Operation = {
        "operationId": order["operationId"],
        "operation": order["operation"],
        "status": before["status"],
        "startTime": order["startTime"],
        **({"endTime": before["endTime"]} if "endTime" in before else {}),
        "cardId": order["cardId"],
        "details": {"status": draw(unknown_statuses())},
    }
    return ops[:at] + [unknown] + ops[at:]


@check("tolerates_unknown_status", strategy=lambda ctx: lifecycles_with_unknown_status())
def tolerates_unknown_status(trial: Trial, operations: list[Operation]) -> CheckFailure | None:
    """An unknown details.status gets 2xx and does not stop later known statuses from applying."""
    operations = trial.fresh_operations(operations)
    failure = _post_all(trial, one_per_post(operations), "status")
    if failure:
        return failure
    mismatch = trial.state_mismatch(operations)
    expected = "the latest known status held; an unknown status is accepted and never blocks"
    return trial.fail(mismatch, expected) if mismatch else None


@check("tolerates_unknown_fields", strategy=lambda ctx: with_unknown_fields(notifications(1, 1)))
def tolerates_unknown_fields(trial: Trial, body: dict[str, Any]) -> CheckFailure | None:
    """Extra fields at any level get 2xx."""
    reply = trial.post(trial.fresh(body))
    return (
        None
        if trial.accepted(reply)
        else trial.fail(reply, ACCEPTED + "; unknown fields are ignored")
    )


@check("tolerates_minimal_payload", strategy=lambda ctx: minimal_notifications(1, 1))
def tolerates_minimal_payload(trial: Trial, body: dict[str, Any]) -> CheckFailure | None:
    """Only the required fields present (no optional ones) gets 2xx."""
    reply = trial.post(trial.fresh(body))
    return (
        None
        if trial.accepted(reply)
        else trial.fail(reply, ACCEPTED + "; optional fields may be absent")
    )
