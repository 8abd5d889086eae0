"""The convergence rule: the state a receiver must end in, whatever order notifications came in.

Per card: the order (operationId) with the latest ``startTime`` counts; within it the known
status of highest rank wins, and among repeated updates of a repeatable status (CARD_SHIPPED)
the one with the latest ``shipment.lastUpdatedAt`` (missing counts as oldest). Unknown statuses
never move the state.

Example::

    >>> from d1sim.contracts.lifecycle.convergence import converge
    >>> ops = [{"operationId": "o", "operation": "PRODUCE", "cardId": "c", "startTime": "2025-01-01T00:00:00Z",
    ...         "details": {"status": s}} for s in ("CARD_PROD_DONE", "CARD_PROD_REQUESTED")]
    >>> converge(ops)["c"].status
    'CARD_PROD_DONE'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from d1sim.contracts.lifecycle.model import Lifecycle, load_lifecycle
from d1sim.contracts.lifecycle.sequence import parse_time

OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CardState:
    """What a receiver should hold for one card (the state probe's shape)."""

    card_id: str
    status: str
    shipment: Mapping[str, Any] | None = None
    operation_id: str | None = None

    def as_probe(self) -> dict[str, Any]:
        """The state-probe body: ``{"cardId", "status"[, "shipment"]}``."""
        body: dict[str, Any] = {"cardId": self.card_id, "status": self.status}
        if self.shipment is not None:
            body["shipment"] = dict(self.shipment)
        return body


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return OLDEST
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


OrderKey = tuple[datetime, str, int, datetime]


def order_key(op: Mapping[str, Any], model: Lifecycle | None = None) -> OrderKey:
    """Sort key of a PRODUCE operation with a known status: the greatest key is the state to hold.

    (startTime of the order, operationId, rank of details.status, shipment.lastUpdatedAt).
    A receiver keeps the held operation's key and applies a new one only when its key is greater.
    """
    model = model or load_lifecycle()
    details = op["details"]
    shipment = details.get("shipment")
    updated = shipment.get(model.rules["shipmentOrderBy"]) if isinstance(shipment, Mapping) else None
    return (_aware(parse_time(op.get("startTime"))), str(op.get("operationId")),
            model.rank(details["status"]), _aware(parse_time(updated)))


class Convergence:
    """Accumulates operations one at a time; ``states()`` gives each card's expected state."""

    def __init__(self, model: Lifecycle | None = None) -> None:
        self.model = model or load_lifecycle()
        self._best: dict[str, tuple[OrderKey, Mapping[str, Any]]] = {}

    def add(self, op: Mapping[str, Any]) -> None:
        """Take one operation into account (non-PRODUCE and unknown statuses are ignored)."""
        details = op.get("details")
        card_id = op.get("cardId")
        if op.get("operation") != self.model.operation or not isinstance(details, Mapping):
            return
        status = details.get("status")
        if not isinstance(card_id, str) or not isinstance(status, str) or not self.model.is_known(status):
            return
        key = order_key(op, self.model)
        current = self._best.get(card_id)
        if current is None or key > current[0]:
            self._best[card_id] = (key, op)

    def states(self) -> dict[str, CardState]:
        """The expected state of every card that reported at least one known status."""
        return {card_id: state for card_id, (_, state) in self.keyed_states().items()}

    def keyed_states(self) -> dict[str, tuple[OrderKey, CardState]]:
        """Each card's expected state with the order key that put it there."""
        result = {}
        for card_id, (key, op) in self._best.items():
            details, op_id = op["details"], key[1]
            shipment = details.get("shipment") if self.model.states[details["status"]].repeatable else None
            result[card_id] = (key, CardState(card_id, details["status"],
                                              shipment if isinstance(shipment, Mapping) else None, op_id))
        return result


def converge(operations: Iterable[Mapping[str, Any]], model: Lifecycle | None = None) -> dict[str, CardState]:
    """Return, per cardId, the state a conforming receiver ends in after ``operations``.

    Args:
        operations: operation objects, in any order, possibly duplicated.
        model: the lifecycle (default: the shipped PRODUCE model).
    Returns:
        ``{cardId: CardState}`` for each card with at least one known status.
    """
    acc = Convergence(model)
    for op in operations:
        acc.add(op)
    return acc.states()
