"""How a receiver's held state is judged: by meaning, on the contract's known fields, ties allowed.

One comparison serves every place that reads a receiver's state (``d1sim check``'s probe and
``d1sim replay --state-url``), so a verdict never depends on which tool asked:

- values are compared by meaning: ``...02.492Z``, ``...02.492000Z`` and ``...02.492+00:00`` are
  one instant; a naive date-time read back from a database counts as UTC; a field the contract
  types as a date-time may be held as the plain date of that instant; numbers by value;
- only the fields the contract knows (``shipment.schema.json``, ``last-checkpoint.schema.json``)
  are compared: a receiver must tolerate unknown fields, not store them;
- when the latest orders of a card share one ``startTime`` the rules leave the winner open, so
  the state of any of those orders is accepted (:func:`acceptable_states`).

Example::

    >>> same_value("2025-01-17T06:28:02.492Z", "2025-01-17 06:28:02.492000+00:00", "dateTime")
    True
    >>> same_value("2025-01-17T06:28:02.492Z", "2025-01-17T06:28:02Z", "dateTime")
    False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from d1sim.contracts.lifecycle import Lifecycle
from d1sim.contracts.lifecycle.convergence import CardState, Convergence, OrderKey
from d1sim.contracts.notification.documents import load_document, shipped

# The kind of each known field of the objects a probe may hold, read from the schemas' $refs.
_KIND_OF_REF = {
    "types.schema.json#/$defs/dateTime": "dateTime",
    "types.schema.json#/$defs/date": "date",
    "types.schema.json#/$defs/dateOrDateTime": "dateOrDateTime",
    "last-checkpoint.schema.json": "lastCheckpoint",
}


def _field_kinds(schema_name: str) -> dict[str, str]:
    properties = load_document(schema_name)["properties"]
    return {name: _KIND_OF_REF.get(spec.get("$ref", ""), "value") for name, spec in properties.items()}


def _known_fields() -> dict[str, dict[str, str]]:
    return {
        "shipment": _field_kinds("shipment.schema.json"),
        "lastCheckpoint": _field_kinds("last-checkpoint.schema.json"),
    }


def known_fields() -> dict[str, dict[str, str]]:
    """The contract's known fields of a shipment and a lastCheckpoint, with their kinds."""
    return shipped(_known_fields)


def parse_instant(value: Any) -> datetime | None:
    """An aware datetime for an ISO 8601 date-time (``Z``/``z``/offset/naive as UTC), else None."""
    if not isinstance(value, str) or len(value) < 11 or value[10] not in "Tt ":
        return None
    try:
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _same_moment(expected: Any, held: Any, date_allowed: bool) -> bool:
    want, got = parse_instant(expected), parse_instant(held)
    if want is not None and got is not None:
        return want == got
    held_day, want_day = _parse_date(held), _parse_date(expected)
    if want is not None and held_day is not None:
        # Held as the plain date of the instant (a DATE column): the day as written, or in UTC.
        return date_allowed and held_day in (want.date(), want.astimezone(UTC).date())
    if want_day is not None:
        return want_day == (got.date() if got is not None else held_day)
    return bool(expected == held)


def same_value(expected: Any, held: Any, kind: str = "value") -> bool:
    """True when ``held`` means what ``expected`` means for a field of contract type ``kind``.

    Kinds: ``dateTime``, ``date``, ``dateOrDateTime``, ``lastCheckpoint`` (compared on its known
    fields) and ``value`` (plain equality; ``1 == 1.0``).
    """
    if kind in ("dateTime", "date", "dateOrDateTime"):
        return _same_moment(expected, held, date_allowed=True)
    if kind == "lastCheckpoint" and isinstance(expected, Mapping):
        return isinstance(held, Mapping) and not differing_fields(expected, held, "lastCheckpoint")
    return bool(expected == held)


def differing_fields(expected: Mapping[str, Any], held: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The known fields of ``expected`` (an object of ``kind``) whose held value means otherwise."""
    known = known_fields()[kind]
    return {
        name: value
        for name, value in expected.items()
        if name in known and not same_value(value, held.get(name), known[name])
    }


def _mismatch(expected: CardState, held: Mapping[str, Any]) -> str | None:
    if held.get("status") != expected.status:
        return f"card {expected.card_id}: expected {expected.status}, held {held.get('status')!r}"
    if expected.shipment is not None and "shipment" in held:
        # A receiver may merge updates; every known field of the latest update must be held.
        got = held["shipment"] if isinstance(held["shipment"], Mapping) else {}
        differ = differing_fields(expected.shipment, got, "shipment")
        if differ:
            return f"card {expected.card_id}: shipment should hold {differ}, held {held['shipment']}"
    return None


def compare_state(
    expected: CardState | Sequence[CardState], held: Mapping[str, Any] | None
) -> str | None:
    """None when the probe's answer ``held`` matches ``expected`` (or any one of several allowed
    states); otherwise what differs from the first of them.

    Example::

        >>> state = CardState("c1", "CARD_SHIPPED", {"lastUpdatedAt": "2026-05-22T13:55:00Z"})
        >>> compare_state(state, {"status": "CARD_SHIPPED",
        ...                       "shipment": {"lastUpdatedAt": "2026-05-22T13:55:00.000+00:00"}})
    """
    allowed = [expected] if isinstance(expected, CardState) else list(expected)
    first = allowed[0]
    if held is None:
        return f"card {first.card_id}: expected {_statuses(allowed)}, the receiver does not know the card"
    problems = [_mismatch(state, held) for state in allowed]
    if all(problems):
        return problems[0] if len(allowed) == 1 else f"{problems[0]} (a tie allows {_statuses(allowed)})"
    return None


def _statuses(states: Sequence[CardState]) -> str:
    return " or ".join(dict.fromkeys(s.status for s in states))


def acceptable_states(
    operations: Iterable[Mapping[str, Any]], model: Lifecycle | None = None
) -> dict[str, tuple[CardState, ...]]:
    """Per card, every state the convergence rule allows after ``operations``.

    One state, :func:`~d1sim.contracts.lifecycle.convergence.converge`'s, unless the latest orders of a
    card share their ``startTime``: then the state each of those orders converges to is allowed
    (the contract does not say which order wins a tie; see docs/decisions.md).
    """
    per_order: dict[tuple[str, str], Convergence] = {}
    for op in operations:
        key = (str(op.get("cardId")), str(op.get("operationId")))
        per_order.setdefault(key, Convergence(model)).add(op)
    best: dict[str, list[tuple[OrderKey, CardState]]] = {}
    for convergence in per_order.values():
        for card_id, (order_key, state) in convergence.keyed_states().items():
            best.setdefault(card_id, []).append((order_key, state))
    result = {}
    for card_id, candidates in best.items():
        latest = max(key[0] for key, _ in candidates)
        tied = sorted((c for c in candidates if c[0][0] == latest), key=lambda c: c[0], reverse=True)
        result[card_id] = tuple(state for _, state in tied)
    return result
