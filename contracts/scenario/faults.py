"""The table of fault kinds a scenario can inject: adding a fault means adding a row to ``FAULTS``.

A fault acts at one of two stages of an expansion. ``card`` faults rewrite one card's planned
notifications before they are packed into POST bodies (they change *what* is sent); ``lane``
faults rewrite the packed deliveries of one ordering lane (they change *how* it is sent). Every
fault draws from its own ``random.Random``, seeded from the scenario seed, the fault's position
and the card or lane, so one fault never shifts the random choices of another.

Example::

    >>> from d1sim.contracts.scenario.faults import FAULTS
    >>> FAULTS["duplicate"].stage, sorted(FAULTS["duplicate"].defaults)
    ('lane', ['after', 'probability', 'step'])
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from random import Random
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from d1sim.contracts.notification.vocabulary import UNKNOWN_STATUSES

if TYPE_CHECKING:  # a fault is applied at expansion, which loads the factory (and faker)
    from d1sim.contracts.payloads.factory import Order, PayloadFactory


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault of a scenario: its kind, the parameters set in the file, an optional label."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None

    @property
    def tag(self) -> str:
        """The label written on the deliveries this fault makes or changes."""
        return self.label or self.kind

    def get(self, name: str) -> Any:
        """A parameter as set in the file, else the kind's default."""
        return self.params[name] if name in self.params else FAULTS[self.kind].defaults[name]

    @property
    def steps(self) -> frozenset[int] | None:
        """The notifications (from 1) the fault is limited to; None for all."""
        step = self.params.get("step")
        if step is None:
            return None
        return frozenset([step] if isinstance(step, int) else step)


@dataclass(slots=True)
class Planned:
    """One notification of a card before packing: when it happens and the operation sent."""

    at: datetime
    op: dict[str, Any]
    step: int | None  # the card's n-th notification (from 1); None when a fault made it
    faults: tuple[str, ...] = ()


@dataclass(slots=True)
class Outgoing:
    """One packed POST of a lane, not yet numbered; ``steps``: the path positions it carries."""

    due: float
    body: bytes
    card_ids: tuple[str, ...]
    statuses: tuple[str, ...]
    steps: frozenset[int]
    faults: tuple[str, ...] = ()
    operations: tuple[Mapping[str, Any], ...] = ()  # what the body holds, for the expectations


@dataclass(frozen=True, slots=True)
class CardContext:
    """What a card fault may use: the card's order and the payload factory."""

    order: Order
    factory: PayloadFactory


CardFault = Callable[[Fault, Random, list[Planned], CardContext], list[Planned]]
LaneFault = Callable[[Fault, Random, list[Outgoing]], list[Outgoing]]


@dataclass(frozen=True, slots=True)
class FaultKind:
    """A row of the table: the parameters a kind takes (with defaults) and what it does."""

    name: str
    summary: str
    defaults: Mapping[str, Any]
    on_card: CardFault | None = None
    on_lane: LaneFault | None = None

    @property
    def stage(self) -> str:
        return "card" if self.on_card else "lane"


def labelled(faults: tuple[str, ...], tag: str) -> tuple[str, ...]:
    """``faults`` plus ``tag``, each label once, in the order applied."""
    return faults if tag in faults else (*faults, tag)


def _hit(fault: Fault, rng: Random, steps: Collection[int | None]) -> bool:
    wanted = fault.steps
    roll = rng.random()  # drawn even when the step filter says no: choices stay aligned
    return (wanted is None or not wanted.isdisjoint(steps)) and roll < fault.get("probability")


def _candidates(fault: Fault, planned: list[Planned], default: range) -> list[int]:
    wanted = fault.steps
    if wanted is None:
        return list(default)
    return [i for i, item in enumerate(planned) if item.step in wanted]


def _duplicate(fault: Fault, rng: Random, sent: list[Outgoing]) -> list[Outgoing]:
    """Deliver a body again, byte for byte, ``after`` later (at least once: D1 may redeliver)."""
    lag = fault.get("after").total_seconds()
    out: list[Outgoing] = []
    waiting: list[Outgoing] = []  # twins, by due: each goes out once nothing due earlier is left
    for item in sent:
        while waiting and waiting[0].due < item.due:
            out.append(waiting.pop(0))
        out.append(item)
        if _hit(fault, rng, item.steps):
            twin = replace(item, due=item.due + lag, faults=labelled(item.faults, fault.tag))
            bisect.insort(waiting, twin, key=lambda x: x.due)
    return out + waiting


def _reorder(fault: Fault, rng: Random, sent: list[Outgoing]) -> list[Outgoing]:
    """Permute each run of ``window`` consecutive deliveries; dues keep their slots."""
    fixed: list[int] | None = fault.get("permutation")
    size = len(fixed) if fixed else fault.get("window")
    dues = [item.due for item in sent]
    out: list[Outgoing] = []
    for first in range(0, len(sent), size):
        run = sent[first : first + size]
        order = (
            _run_order(fixed, len(run), rng) if rng.random() < fault.get("probability") else None
        )
        if order is None:
            out += run
            continue
        out += [
            run[k] if k == i else replace(run[k], faults=labelled(run[k].faults, fault.tag))
            for i, k in enumerate(order)
        ]
    for item, due in zip(out, dues, strict=True):
        item.due = due
    return out


def _run_order(fixed: list[int] | None, size: int, rng: Random) -> list[int] | None:
    if fixed is not None:
        return fixed if size == len(fixed) else None  # a shorter last run is left alone
    if size < 2:
        return None
    order = list(range(size))
    rng.shuffle(order)
    # A shuffle may give back the same order; a fault that was asked for must show.
    return order if order != sorted(order) else order[1:] + order[:1]


def _delay(fault: Fault, rng: Random, sent: list[Outgoing]) -> list[Outgoing]:
    """Hold deliveries back by ``delay`` plus or minus ``jitter`` (never earlier than planned)."""
    base, jitter = fault.get("delay").total_seconds(), fault.get("jitter").total_seconds()
    out = []
    for item in sent:
        wobble = rng.uniform(-jitter, jitter)
        if _hit(fault, rng, item.steps):
            item = replace(
                item,
                due=item.due + max(0.0, base + wobble),
                faults=labelled(item.faults, fault.tag),
            )
        out.append(item)
    return out


def _unknown_status(
    fault: Fault, rng: Random, planned: list[Planned], ctx: CardContext
) -> list[Planned]:
    """Insert one notification with a status D1 may add some day; known statuses follow it."""
    status = fault.get("status") or rng.choice(UNKNOWN_STATUSES)
    candidates = _candidates(fault, planned, range(max(1, len(planned) - 1)))
    if not candidates or not rng.random() < fault.get("probability"):
        return planned
    place = rng.choice(candidates)
    before = planned[place]
    after = planned[place + 1].at if place + 1 < len(planned) else before.at + timedelta(hours=2)
    at = before.at + (after - before.at) / 2
    extra = Planned(at, ctx.factory.operation(ctx.order, status, at), None, (fault.tag,))
    return [*planned[: place + 1], extra, *planned[place + 1 :]]


# Plausible names for fields D1 may add one day; none is in the published schemas.
FUTURE_FIELDS: tuple[str, ...] = (
    "riskScore",
    "packagingType",
    "deliveryWindow",
    "serviceLevel",
    "batchReference",
    "qualityGrade",
    "plantLine",
    "recycledMaterial",
    "regionCode",
    "customerReference",
    "trackingEvents",
    "signatureRequired",
)


def _future_value(rng: Random, depth: int) -> Any:
    kind = rng.randrange(5 if depth < 2 else 3)
    if kind == 0:
        return rng.choice(("STANDARD", "EXPRESS", "eco", "v2"))
    if kind == 1:
        return rng.randrange(1000)
    if kind == 2:
        return rng.random() < 0.5
    if kind == 3:
        return [_future_value(rng, depth + 1) for _ in range(rng.randrange(1, 3))]
    return {rng.choice(FUTURE_FIELDS): _future_value(rng, depth + 1)}


def _containers(node: Any) -> list[dict[str, Any]]:
    if not isinstance(node, dict):
        return []
    found = [node]
    for value in node.values():
        found += _containers(value)
    return found


def with_unknown_fields(op: Mapping[str, Any], rng: Random, count: int) -> dict[str, Any]:
    """A copy of ``op`` with ``count`` unknown fields added at random depths."""
    grown = copy.deepcopy(dict(op))
    for _ in range(count):
        target = rng.choice(_containers(grown))
        free = [name for name in FUTURE_FIELDS if name not in target] or [f"extension{len(target)}"]
        target[rng.choice(free)] = _future_value(rng, 0)
    return grown


def _unknown_fields(
    fault: Fault, rng: Random, planned: list[Planned], ctx: CardContext
) -> list[Planned]:
    """Add fields no schema knows, anywhere in the operation (D1 may add optional fields)."""
    for item in planned:
        if _hit(fault, rng, {item.step}):
            item.op = with_unknown_fields(item.op, rng, fault.get("fields"))
            item.faults = labelled(item.faults, fault.tag)
    return planned


def _minimal(fault: Fault, rng: Random, planned: list[Planned], ctx: CardContext) -> list[Planned]:
    """Strip operations to the fields the schemas require (and the lifecycle's order stamp)."""
    for item in planned:
        if _hit(fault, rng, {item.step}):
            item.op = lifecycle_minimal(item.op, ctx.factory)
            item.faults = labelled(item.faults, fault.tag)
    return planned


def lifecycle_minimal(op: Mapping[str, Any], factory: PayloadFactory) -> dict[str, Any]:
    """``minimal_operation``, keeping ``shipment.lastUpdatedAt`` where the original had it.

    Every shipment update after the first must carry it (the lifecycle's rule): without it two
    updates could not be ordered, and no receiver could tell which one to hold.
    """
    from d1sim.contracts.payloads.factory import minimal_operation

    slim = minimal_operation(op, factory.model)
    stamp_name = factory.model.rules["shipmentOrderBy"]
    shipment = op.get("details", {}).get("shipment")
    if isinstance(shipment, Mapping) and stamp_name in shipment:
        slim["details"]["shipment"] = {stamp_name: shipment[stamp_name]}
    return slim


def _stale(fault: Fault, rng: Random, planned: list[Planned], ctx: CardContext) -> list[Planned]:
    """Send an earlier notification again, ``after`` the card's last one."""
    earlier = [
        i
        for i in _candidates(fault, planned, range(len(planned) - 1))
        if i < len(planned) - 1 and planned[i].step is not None
    ]
    if not earlier or not rng.random() < fault.get("probability"):
        return planned
    old = planned[rng.choice(earlier)]
    again = Planned(
        planned[-1].at + fault.get("after"),
        copy.deepcopy(old.op),
        None,
        labelled(old.faults, fault.tag),
    )
    return [*planned, again]


_COMMON = {"probability": 1.0, "step": None}

# fmt: off
# Read-only: a new fault kind is a new row here, never something filled in at run time.
FAULTS: Mapping[str, FaultKind] = MappingProxyType({row.name: row for row in (
    FaultKind("duplicate", "the same body is delivered again, byte for byte, `after` later",
              {**_COMMON, "after": timedelta()}, on_lane=_duplicate),
    FaultKind("reorder", "runs of consecutive deliveries of a lane are sent in another order",
              {"probability": 1.0, "window": 3, "permutation": None}, on_lane=_reorder),
    FaultKind("delay", "deliveries are held back by `delay` +/- `jitter`; their lane waits",
              {**_COMMON, "delay": timedelta(seconds=30), "jitter": timedelta()}, on_lane=_delay),
    FaultKind("unknown_status", "a notification with a details.status the model does not know",
              {**_COMMON, "status": None}, on_card=_unknown_status),
    FaultKind("unknown_fields", "fields no schema knows are added at random depths",
              {**_COMMON, "fields": 2}, on_card=_unknown_fields),
    FaultKind("minimal", "operations keep only the fields the schemas require",
              dict(_COMMON), on_card=_minimal),
    FaultKind("stale", "an earlier notification is delivered again after the card's later ones",
              {**_COMMON, "after": timedelta(hours=1)}, on_card=_stale),
)})
# fmt: on
