"""Pull & change: an issuer cancels an order that has not shipped yet.

What the card has *reached* stays: every delivery already handed to the sender, the one in
flight, the first one (CARD_PROD_REQUESTED exists from the moment the order is accepted) and,
on a running clock, every one already due. What lies beyond is dropped from the outbox, and a
CARD_PROD_CANCELED notification (FAILED, with endTime) is appended to the card's lane, due now.
A card that reached a terminal status -- shipped, rejected, cancelled -- cannot be cancelled.
Everything happens under the dispatcher's lock, so no delivery is dropped while in flight.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from d1sim.contracts.lifecycle import load_lifecycle
from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.d1.dispatcher import Dispatcher
from d1sim.simulator.d1.issuers import Issuers
from d1sim.simulator.d1.orders import CANCELED, cancel_operation, held_operation, start_time
from d1sim.simulator.d1.server_outbox import ServerOutbox
from d1sim.simulator.d1.store import OrderRecord, Store
from d1sim.simulator.delivery.outbox import StoredDelivery


class CancelRefused(Exception):
    """The order cannot be cancelled any more; ``status`` and ``code`` for D1's error body."""

    def __init__(self, message: str, status: int = 409, code: str = "INVALID_CARD_STATE") -> None:
        super().__init__(message)
        self.status, self.code = status, code


def cancel_order(
    order: OrderRecord, dispatcher: Dispatcher, outbox: ServerOutbox, store: Store, issuers: Issuers
) -> int:
    """End a planned order's lifecycle with CARD_PROD_CANCELED; return how many were dropped.

    Raises:
        CancelRefused: the card has reached a terminal status (e.g. it has shipped).
    """
    assert order.run_id is not None, "plan the order first"
    with dispatcher.lock:
        clock = issuers.clock(order.issuer_id)
        virtual = clock.now(issuers.real())
        cutoff = virtual if clock.scale > 0 else float("-inf")
        reached, future = _split(order, dispatcher, outbox, cutoff)
        _refuse_if_ended(order, reached)
        dropped = outbox.drop(item.id for item in future)
        last = held_operation(operations_in(reached), order.card_id)
        if last is None:
            raise CancelRefused(f"card {order.card_id}: nothing of the order was reached yet")
        outbox.add_deliveries(
            order.run_id,
            [_cancel_delivery(order, reached, last, virtual, outbox.next_seq(order.run_id))],
        )
        store.mark_canceled(order.operation_id)
        dispatcher.reload(order.run_id)
    return dropped


def _split(
    order: OrderRecord, dispatcher: Dispatcher, outbox: ServerOutbox, cutoff: float
) -> tuple[list[StoredDelivery], list[StoredDelivery]]:
    """(reached, future) deliveries of the order's run, as of virtual time ``cutoff``."""
    assert order.run_id is not None
    reached = outbox.sent(order.run_id)
    future: list[StoredDelivery] = []
    sent_ids = {item.id for item in reached}
    for lane in dispatcher.lanes.get(order.run_id, []):
        for n, item in enumerate(lane.waiting):
            if item.id in sent_ids:
                continue
            first = item.delivery.seq == 1
            if (n == 0 and lane.busy) or first or lane.start + item.delivery.due <= cutoff:
                reached.append(item)
            else:
                future.append(item)
    return reached, future


def _refuse_if_ended(order: OrderRecord, reached: list[StoredDelivery]) -> None:
    model = load_lifecycle()
    for item in reached:
        for status in item.delivery.statuses:
            if model.is_known(status) and model.is_terminal(status):
                shipped = model.operation_status(status) == "SUCCESSFUL"
                what = "has shipped" if shipped else f"has already ended ({status})"
                raise CancelRefused(f"card {order.card_id} {what}: it cannot be cancelled")


def operations_in(items: Iterable[StoredDelivery]) -> list[dict[str, Any]]:
    """Every operation in the bodies of ``items`` (a body that is not JSON has none)."""
    ops: list[dict[str, Any]] = []
    for item in items:
        try:
            body = orjson.loads(item.delivery.body)
        except orjson.JSONDecodeError:
            continue
        if isinstance(body, dict) and isinstance(body.get("operations"), list):
            ops += [op for op in body["operations"] if isinstance(op, dict)]
    return ops


def _cancel_delivery(
    order: OrderRecord,
    reached: list[StoredDelivery],
    last: Mapping[str, Any],
    virtual: float,
    seq: int,
) -> Delivery:
    after = max((item.delivery.due for item in reached), default=0.0)
    due = round(max(virtual - order.start, after), 3)
    op = cancel_operation(last, start_time(order.start + due))
    key = reached[0].delivery.key if reached else f"cancel:{order.card_id}"
    return Delivery(
        seq,
        due,
        orjson.dumps({"operations": [op]}),
        (order.card_id,),
        (CANCELED,),
        str(uuid.uuid4()),
        reached[0].delivery.scenario if reached else "cancel",
        key,
    )
