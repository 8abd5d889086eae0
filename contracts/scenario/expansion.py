"""Expansion: a scenario and a seed become a stream of deliveries (the timeline) and expectations.

Cards are expanded one group at a time, so the stream's memory does not grow with the number of
cards. A group is the set of cards that may share POST bodies (``batching.max`` cards when
``mix`` is on, one card otherwise) and it is one ordering lane: its deliveries share a ``key``,
and the sender keeps a key's deliveries in ``seq`` order, so a card's notifications arrive in
true order unless a fault reorders them. After the last delivery concerning a card comes a
:class:`CardExpectation`: the convergence of the operations actually sent for it.

Example::

    >>> from d1sim.contracts.scenario.expansion import expand_scenario, summarize
    >>> from d1sim.contracts.scenario.loading import load_bundled
    >>> first, second = (summarize(expand_scenario(load_bundled("happy-path"))) for _ in range(2))
    >>> first == second, first.cards
    (True, 1)
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from random import Random
from typing import Any

import orjson

from d1sim.contracts.lifecycle.convergence import CardState, Convergence
from d1sim.contracts.payloads.factory import DEFAULT_START, Order, PayloadFactory
from d1sim.contracts.scenario.faults import FAULTS, CardContext, Fault, Outgoing, Planned, labelled
from d1sim.contracts.scenario.model import Notice, Scenario
from d1sim.contracts.scenario.timeline import Delivery

CORRELATION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://d1sim.dev/correlation-id")
ORDER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://d1sim.dev/order-id")
_CORRELATION_BYTES, _ORDER_BYTES = CORRELATION_NAMESPACE.bytes, ORDER_NAMESPACE.bytes


@dataclass(frozen=True, slots=True)
class CardExpectation:
    """What the receiver must hold for a card once deliveries up to ``after_seq`` are in.

    ``state`` is None when no known status was sent for the card: the probe should not know it.
    """

    card_id: str
    state: CardState | None
    scenario: str
    after_seq: int


@dataclass(frozen=True, slots=True)
class _Run:
    """What every group of one expansion shares."""

    scenario: Scenario
    seed: int
    start: datetime
    factory: PayloadFactory
    path: tuple[Notice, ...]
    card_faults: tuple[tuple[int, Fault], ...]
    lane_faults: tuple[tuple[int, Fault], ...]


def expand_scenario(
    scenario: Scenario, *, seed: int | None = None, start: datetime | None = None
) -> Iterator[Delivery | CardExpectation]:
    """Stream the deliveries of ``scenario``, each card's expectation after its last delivery.

    Args:
        scenario: a checked scenario.
        seed: overrides the scenario's seed; the same seed yields byte-identical bodies.
        start: the virtual clock's origin (payload times follow it); ``due`` counts from it.
    Returns:
        An iterator of :class:`~d1sim.contracts.scenario.timeline.Delivery` and :class:`CardExpectation`,
        ``seq`` increasing from 1.
    """
    return _expand(scenario, seed, start, expectations=True)


def planned_deliveries(scenario: Scenario, *, seed: int | None = None,
                       start: datetime | None = None) -> Iterator[Delivery]:
    """Only the deliveries of an expansion (what the outbox stores), without computing expectations."""
    return _expand(scenario, seed, start, expectations=False)  # type: ignore[return-value]


def _expand(scenario: Scenario, seed: int | None, start: datetime | None, *,
            expectations: bool) -> Iterator[Delivery | CardExpectation]:
    seed = scenario.seed if seed is None else seed
    start = start or DEFAULT_START
    indexed = list(enumerate(scenario.faults))
    run = _Run(
        scenario,
        seed,
        start,
        PayloadFactory(seed, start=start),
        scenario.path,
        tuple((j, f) for j, f in indexed if FAULTS[f.kind].on_card),
        tuple((j, f) for j, f in indexed if FAULTS[f.kind].on_lane),
    )
    numbers = itertools.count(1)
    size = scenario.batching.max if scenario.batching.mix else 1
    for group, cards in enumerate(_chunks(_orders(run), size)):
        if expectations:
            yield from _expand_group(run, group, cards, numbers)
        else:
            yield from _group_deliveries(run, group, cards, numbers)


def card_expectations(scenario: Scenario, *, seed: int | None = None) -> Iterator[CardExpectation]:
    """Only the cards' expected end states of an expansion (recomputed: it is deterministic)."""
    return (i for i in expand_scenario(scenario, seed=seed) if isinstance(i, CardExpectation))


def _chunks(items: Iterator[tuple[int, Order]], size: int) -> Iterator[list[tuple[int, Order]]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _orders(run: _Run) -> Iterator[tuple[int, Order]]:
    cards, file_name = run.scenario.cards, ""
    for i in range(cards.total):
        order = run.factory.new_order(
            card_id=cards.ids[i] if cards.ids else None,
            start=run.start + i * cards.spacing,
            correlated=cards.correlated,
        )
        if not cards.ids:
            order.card_id, order.operation_id = order_ids(run.scenario.name, run.seed, i)
        if cards.correlated:
            # Cards ordered in one issuer file share its name; each keeps its own request id.
            file_name = order.correlation["inputFileName"] if i % cards.per_file == 0 else file_name
            order.correlation["inputFileName"] = file_name
        yield i, order


def order_ids(scenario: str, seed: int, index: int) -> tuple[str, str]:
    """The card id and operation id of card ``index``: unique per scenario name and seed, so
    two scenarios replayed against one persistent receiver never share a card.

    Example::

        >>> order_ids("happy-path", 1, 0) != order_ids("canceled-in-production", 1, 0)
        True
    """
    made = _uuid5_bytes(_ORDER_BYTES, f"{scenario}:{seed}:{index}")
    digits = made.hex()
    card_id = f"{digits[0:4]}-{digits[4:8]}-{digits[8:12]}-{digits[12:16]}"
    return card_id, _uuid_text(_uuid5_bytes(made, "operation"))


def _uuid5_bytes(namespace: bytes, name: str) -> bytes:
    """``uuid.uuid5(UUID(bytes=namespace), name).bytes`` without building UUID objects.

    A third of the time of :func:`uuid.uuid5` and ``str``, which expansion calls three times a
    card and once a delivery. RFC 4122: SHA-1 of namespace and name, version 5, variant 10.
    """
    made = bytearray(hashlib.sha1(namespace + name.encode(), usedforsecurity=False).digest()[:16])
    made[6] = (made[6] & 0x0F) | 0x50
    made[8] = (made[8] & 0x3F) | 0x80
    return bytes(made)


def _uuid_text(raw: bytes) -> str:
    """``str(uuid.UUID(bytes=raw))``: 8-4-4-4-12 lowercase hex digits."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _rng(seed: int, fault_index: int, where: str) -> Random:
    return Random(f"{seed}:{fault_index}:{where}")


def _plan_card(run: _Run, index: int, order: Order) -> list[Planned]:
    planned = []
    for notice in run.path:
        at = order.start + notice.offset
        planned.append(Planned(at, _operation(run.factory, order, notice, at), notice.index))
    for j, fault in run.card_faults:
        apply = FAULTS[fault.kind].on_card
        assert apply is not None
        planned = apply(fault, _rng(run.seed, j, f"card{index}"), planned, CardContext(order, run.factory))
    return planned


def _operation(
    factory: PayloadFactory, order: Order, notice: Notice, at: datetime
) -> dict[str, Any]:
    op = factory.operation(order, notice.status, at, update=notice.update)
    step = notice.step
    if step.operation:
        _merge(op, step.operation)
    details = op.get("details")
    if isinstance(details, dict):
        if step.details:
            _merge(details, step.details)
        if step.shipment:
            details["shipment"] = _merge(dict(details.get("shipment") or {}), step.shipment)
    return op


def _merge(target: dict[str, Any], changes: Any) -> dict[str, Any]:
    for name, value in (changes or {}).items():
        if value is None:
            target.pop(name, None)  # null in a scenario removes a generated field
        else:
            target[name] = value
    return target


def _expected(lane: list[Outgoing]) -> dict[str, CardState]:
    # In arrival order: when a fault makes two operations tie, the first to arrive is held.
    acc = Convergence()
    for item in lane:
        for op in item.operations:
            acc.add(op)
    return acc.states()


def _lane(run: _Run, group: int, cards: list[tuple[int, Order]]) -> tuple[list[Outgoing], str]:
    """A group's outgoing bodies, faults applied and dues settled, and its ordering key."""
    plans = {order.card_id: _plan_card(run, i, order) for i, order in cards}
    lane = _pack(run, plans)
    for j, fault in run.lane_faults:
        apply = FAULTS[fault.kind].on_lane
        assert apply is not None
        lane = apply(fault, _rng(run.seed, j, f"lane{group}"), lane)
    _settle(lane)
    return lane, _lane_key(run.scenario.name, group, list(plans))


def _group_deliveries(
    run: _Run, group: int, cards: list[tuple[int, Order]], numbers: Iterator[int]
) -> Iterator[Delivery]:
    lane, key = _lane(run, group, cards)
    return (_delivery(run, item, next(numbers), key) for item in lane)


def _expand_group(
    run: _Run, group: int, cards: list[tuple[int, Order]], numbers: Iterator[int]
) -> Iterator[Delivery | CardExpectation]:
    lane, key = _lane(run, group, cards)
    expected = _expected(lane)
    remaining = Counter(card for item in lane for card in set(item.card_ids))
    for item in lane:
        delivery = _delivery(run, item, next(numbers), key)
        yield delivery
        for card_id in dict.fromkeys(item.card_ids):
            remaining[card_id] -= 1
            if remaining[card_id] == 0:
                yield CardExpectation(
                    card_id, expected.get(card_id), run.scenario.name, delivery.seq
                )


def _lane_key(name: str, group: int, card_ids: list[str]) -> str:
    # A lone card's lane is named after it, which reads well in the outbox and in reports.
    return f"{name}:{card_ids[0]}" if len(card_ids) == 1 else f"{name}:group-{group}"


def _pack(run: _Run, plans: dict[str, list[Planned]]) -> list[Outgoing]:
    """Bodies of at most ``max`` operations due within ``window`` of the first one."""
    batching = run.scenario.batching
    # (at, n, k) is unique, so sorting never compares beyond it: no key function is needed.
    entries = sorted(
        (p.at, n, k, card_id, p)
        for n, (card_id, planned) in enumerate(plans.items())
        for k, p in enumerate(planned)
    )
    lane: list[Outgoing] = []
    batch: list[tuple[str, Planned]] = []
    for at, _, _, card_id, item in entries:
        if batch and (len(batch) == batching.max or at - batch[0][1].at > batching.window):
            lane.append(_outgoing(run, batch))
            batch = []
        batch.append((card_id, item))
    if batch:
        lane.append(_outgoing(run, batch))
    return lane


def _outgoing(run: _Run, batch: list[tuple[str, Planned]]) -> Outgoing:
    card_ids, items = zip(*batch, strict=True)
    ops = tuple(item.op for item in items)
    return Outgoing(
        due=round((items[-1].at - run.start).total_seconds(), 3),
        body=orjson.dumps({"operations": ops}),
        card_ids=card_ids,
        statuses=tuple(map(_status_of, ops)),
        steps=frozenset(item.step for item in items if item.step is not None),
        faults=_labels(items),
        operations=ops,
    )


def _labels(items: tuple[Planned, ...]) -> tuple[str, ...]:
    faults: tuple[str, ...] = ()
    for item in items:
        for tag in item.faults:
            faults = labelled(faults, tag)
    return faults


def _status_of(op: dict[str, Any]) -> str:
    details = op.get("details")
    return str(details.get("status", "")) if isinstance(details, dict) else ""


def _settle(lane: list[Outgoing]) -> None:
    # A lane is sent in seq order, so nothing in it can be due before what precedes it.
    latest = 0.0
    for item in lane:
        latest = item.due = max(latest, round(item.due, 3))


def _delivery(run: _Run, item: Outgoing, seq: int, key: str) -> Delivery:
    name = run.scenario.name
    correlation = _uuid_text(_uuid5_bytes(_CORRELATION_BYTES, f"{name}:{run.seed}:{seq}"))
    return Delivery(
        seq,
        item.due,
        item.body,
        item.card_ids,
        item.statuses,
        correlation,
        name,
        key,
        ",".join(item.faults) or None,
    )


def fault_labels(delivery: Delivery) -> tuple[str, ...]:
    """The labels of the faults that made or changed ``delivery`` (empty for a clean one)."""
    return tuple(delivery.fault.split(",")) if delivery.fault else ()


@dataclass(slots=True)
class ExpansionSummary:
    """Counts over an expansion stream; :meth:`add` items as they stream by."""

    deliveries: int = 0
    operations: int = 0
    cards: int = 0
    bytes: int = 0
    last_due: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)

    def add(self, item: Delivery | CardExpectation) -> None:
        if isinstance(item, CardExpectation):
            self.cards += 1
            return
        self.deliveries += 1
        self.operations += len(item.statuses)
        self.bytes += len(item.body)
        self.last_due = max(self.last_due, item.due)
        self.faults.update(fault_labels(item))


def summarize(items: Iterable[Delivery | CardExpectation]) -> ExpansionSummary:
    """Count deliveries, operations, cards, bytes and fault labels of a stream."""
    summary = ExpansionSummary()
    for item in items:
        summary.add(item)
    return summary
