"""Strategies for single operations and notification bodies, built from the model and vocabulary.

Each known status takes its operation status, endTime and error fields from the lifecycle
model; the values (carriers, sites, places, shipment progress) come from the vocabulary.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from d1sim.contracts.lifecycle import Lifecycle, load_lifecycle
from d1sim.contracts.notification.documents import load_document
from d1sim.contracts.notification.vocabulary import (
    CHECKPOINT_PLACES,
    EXCEPTION_FIELDS,
    SHIPMENT_PROGRESS,
)
from d1sim.contracts.payloads.factory import format_time, minimal_operation, notification
from d1sim.contracts.strategies.values import (
    MS_PER_DAY,
    Order,
    between,
    booleans,
    draw_later,
    draw_order,
    error_codes,
    failing,
    operation_ids,
)

Operation = dict[str, Any]
Notification = dict[str, Any]

# Carriers differ in what they report; lastUpdatedAt stays because updates are ordered by it.
OPTIONAL_TRACKING_FIELDS = ("message", "trackingUrl", "lastCheckpoint")
MAX_REPORT_DELAY_MS = 30 * MS_PER_DAY
_exception_fields = st.sampled_from(EXCEPTION_FIELDS)
_omitted_tracking = st.sets(st.sampled_from(OPTIONAL_TRACKING_FIELDS))
_places = {country: st.sampled_from(places) for country, places in CHECKPOINT_PLACES.items()}
_ID_PATTERNS = {
    name: load_document("operation.schema.json")["properties"][name]["pattern"]
    for name in ("operationId", "cardId")
}


def draw_operation(
    draw: DrawFn,
    model: Lifecycle,
    order: Order,
    status: str,
    at: datetime,
    *,
    ended: datetime | None = None,
    step: int = 0,
) -> Operation:
    """The operation reporting known ``status`` of ``order`` at ``at``.

    ``ended`` is when the order first ended (defaults to ``at``); ``step`` numbers the shipment
    report of a repeatable status: 0 carries only the delivery estimate, 1.. carry tracking.
    """
    op_status = model.operation_status(status)
    op = base_operation(model, order, op_status, ended or at)
    op["details"] = _details(draw, model, order, status, at, step)
    # Present unless drawn away: the shrunk FAILED example shows the fields a receiver sees.
    if model.error_allowed(op_status) and not draw(booleans):
        op["errorCode"], op["error"] = draw(error_codes), draw(_exception_fields)
    op.update(order.correlation)
    return op


def base_operation(model: Lifecycle, order: Order, op_status: str, ended: datetime) -> Operation:
    op: Operation = {
        "operationId": order.operation_id,
        "operation": model.operation,
        "status": op_status,
        "startTime": format_time(order.start),
    }
    if model.end_time_expected(op_status):
        op["endTime"] = format_time(ended)
    op["cardId"] = order.card_id
    return op


def _details(
    draw: DrawFn, model: Lifecycle, order: Order, status: str, at: datetime, step: int
) -> dict[str, Any]:
    state = model.states[status]
    details: dict[str, Any] = {"status": status}
    # Once the data is prepared (main path past the request) the order has a site and a date.
    if status in model.main_path[1:] and not draw(booleans):
        details["dueDate"], details["productionSite"] = order.due_date.isoformat(), order.site
    if model.error_allowed(state.operation_status) and not draw(booleans):
        details["reason"] = state.meaning
    if order.consumer_id is not None:
        details["consumerId"] = order.consumer_id
    if state.repeatable:
        details["shipment"] = _shipment(draw, order, at, step)
    details.update(order.correlation)
    return details


def _shipment(draw: DrawFn, order: Order, at: datetime, step: int) -> dict[str, Any]:
    estimate = format_time(order.delivery_estimate)
    if step == 0:
        return {"estimatedDeliveryDate": estimate}
    status, message = SHIPMENT_PROGRESS[min(step, len(SHIPMENT_PROGRESS)) - 1]
    carrier = order.carrier
    city = draw(_places.get(carrier.country, st.just(carrier.country)))
    shipment = {
        "carrier": carrier.code,
        "trackingNumber": order.tracking_number,
        "status": status,
        "message": message,
        "trackingUrl": carrier.tracking_url.format(n=order.tracking_number),
        "estimatedDeliveryDate": estimate,
        "lastUpdatedAt": format_time(at),
        "lastCheckpoint": {
            "checkpointTime": format_time(at),
            "city": city,
            "countryName": carrier.country,
            "message": message,
        },
    }
    omitted = draw(_omitted_tracking)
    return {k: v for k, v in shipment.items() if k not in omitted}


def argument_problem(
    caller: str, model: Lifecycle, status: object, card_id: object, operation_id: object
) -> str | None:
    """Why these arguments of ``caller`` cannot give valid operations, or None when they can."""
    if status is not None and not (isinstance(status, str) and model.is_known(status)):
        return (
            f"{caller}(status={status!r}): not a status of the {model.operation} model "
            f"(known: {', '.join(model.states)}); use operations_with_unknown_status() instead"
        )
    for name, value in (("cardId", card_id), ("operationId", operation_id)):
        if value is not None and not (
            isinstance(value, str) and re.search(_ID_PATTERNS[name], value)
        ):
            return f"{caller}({name}={value!r}): does not match {_ID_PATTERNS[name]}"
    return None


def operations(
    status: str | None = None, *, card_id: str | None = None, operation_id: str | None = None
) -> SearchStrategy[Operation]:
    """One PRODUCE operation with consistent fields, for any known status or the given one.

    Args:
        status: a known ``details.status``; None draws any (shrinks to the initial one).
        card_id, operation_id: fixed ids instead of drawn ones.
    Returns:
        A strategy of operation dicts: operation status from the model, endTime only once
        ended, errorCode/error only on FAILED, a shipment on CARD_SHIPPED. An unknown
        ``status`` or a malformed id gives a strategy that fails when drawn.

    Example::

        @given(operations("CARD_SHIPPED"))
        def test_ships(op): assert receiver.post({"operations": [op]}).status_code == 204
    """
    model = load_lifecycle()
    problem = argument_problem("operations", model, status, card_id, operation_id)
    if problem:
        return failing(problem)
    statuses = st.just(status) if status is not None else st.sampled_from(list(model.states))
    return _drawn_operations(model, statuses, card_id, operation_id)


@st.composite
def _drawn_operations(
    draw: DrawFn,
    model: Lifecycle,
    statuses: SearchStrategy[str],
    card_id: str | None,
    operation_id: str | None,
) -> Operation:
    return _draw_report(draw, model, draw(statuses), card_id, operation_id)


def _draw_report(
    draw: DrawFn, model: Lifecycle, status: str, card_id: str | None, operation_id: str | None
) -> Operation:
    # The shape (which shipment report) before the values, so shrinking values never changes it.
    step = draw(between(0, len(SHIPMENT_PROGRESS))) if model.states[status].repeatable else 0
    order = draw_order(draw, card_id=card_id, operation_id=operation_id)
    at = draw_later(draw, order.start, max_ms=MAX_REPORT_DELAY_MS)
    return draw_operation(draw, model, order, status, at, step=step)


def notifications(
    min_operations: int = 1,
    max_operations: int = 10,
    *,
    operations: SearchStrategy[Operation] | None = None,
) -> SearchStrategy[Notification]:
    """Notification bodies ``{"operations": [...]}`` with ``min..max`` operations of mixed cards.

    Args:
        min_operations: at least 1 (an empty list is schema-invalid).
        max_operations: the per-POST maximum agreed at onboarding (d1sim's default: 10).
        operations: where the operations come from (default :func:`operations`, with one
            operationId per operation so a body never holds two states of one order).
    Example::

        @given(notifications(max_operations=3))
        def test_accepts(body): assert receiver.post(body).status_code == 204
    """
    if not isinstance(min_operations, int) or min_operations < 1:
        return failing(f"notifications(min_operations={min_operations!r}): at least 1 operation")
    if operations is not None:
        return st.lists(operations, min_size=min_operations, max_size=max_operations).map(
            notification
        )
    return _mixed_bodies(load_lifecycle(), min_operations, max_operations, slim=False)


@st.composite
def _mixed_bodies(
    draw: DrawFn, model: Lifecycle, low: int, high: int, *, slim: bool
) -> Notification:
    # Statuses first, as one list: the shrinker then drops an operation by deleting one choice,
    # which it does reliably, instead of deleting a whole variable-length block of choices.
    statuses = draw(st.lists(st.sampled_from(list(model.states)), min_size=low, max_size=high))
    count = len(statuses)
    ids = draw(st.lists(operation_ids, min_size=count, max_size=count, unique=True))
    ops = [
        _draw_report(draw, model, status, None, op_id)
        for status, op_id in zip(statuses, ids, strict=True)
    ]
    return notification([minimal_operation(op, model) for op in ops] if slim else ops)


def minimal_notifications(
    min_operations: int = 1, max_operations: int = 10
) -> SearchStrategy[Notification]:
    """Notifications of operations with only the required fields (``factory.minimal_operation``).

    Example::

        @given(minimal_notifications())
        def test_minimal(body): assert receiver.post(body).status_code == 204
    """
    if not isinstance(min_operations, int) or min_operations < 1:
        return failing(
            f"minimal_notifications(min_operations={min_operations!r}): at least 1 operation"
        )
    return _mixed_bodies(load_lifecycle(), min_operations, max_operations, slim=True)
