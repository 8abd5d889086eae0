"""Realistic PRODUCE payloads, built on faker, deterministic for a given seed.

Example::

    >>> from d1sim.contracts.payloads.factory import PayloadFactory
    >>> factory = PayloadFactory(seed=7)
    >>> ops = factory.lifecycle()
    >>> [op["details"]["status"] for op in ops][:2]
    ['CARD_PROD_REQUESTED', 'DATA_PREPARED']
    >>> PayloadFactory(seed=7).lifecycle() == PayloadFactory(seed=7).lifecycle()
    True
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from faker import Generator
from faker.providers import BaseProvider
from faker.providers.misc import Provider as MiscProvider

from d1sim.contracts.lifecycle.model import Lifecycle, State, load_lifecycle
from d1sim.contracts.notification.documents import load_document
from d1sim.contracts.notification.vocabulary import (
    CARRIERS,
    CHECKPOINT_PLACES,
    EXCEPTION_FIELDS,
    PRODUCTION_SITES,
    SHIPMENT_PROGRESS,
    Carrier,
)
from d1sim.contracts.payloads.times import format_time  # here too, where callers have found it

DEFAULT_START = datetime(2025, 1, 17, 6, 28, 2, 492000, tzinfo=UTC)


_HEX = "0123456789abcdef"
_DIGITS = "0123456789"


def _fill(pattern: str, rng: Any, letters: str) -> str:
    """faker's bothify/hexify with the same random draws in the same order, minus its overhead.

    '#' draws faker's ``randint(0, 9)``, '?' and '^' its ``choice(letters)``, both as CPython's
    ``_randbelow`` does (``getrandbits`` of the bit length, redrawn while out of range); the
    pattern is walked in numerify-then-lexify order. A test holds this equal to faker.
    """
    bits = rng.getrandbits
    digit_slots, letter_slots = _slots(pattern)
    out = list(pattern)
    for i in digit_slots:
        r = bits(4)
        while r >= 10:
            r = bits(4)
        out[i] = _DIGITS[r]
    if letters:
        n = len(letters)
        k = n.bit_length()
        for i in letter_slots:
            r = bits(k)
            while r >= n:
                r = bits(k)
            out[i] = letters[r]
    return "".join(out)


@lru_cache(maxsize=64)
def _slots(pattern: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Where ``pattern`` has digits ('#') and letters ('?', '^') to fill: a handful of patterns."""
    return (tuple(i for i, c in enumerate(pattern) if c == "#"),
            tuple(i for i, c in enumerate(pattern) if c in "?^"))


class D1Provider(BaseProvider):
    """Faker provider for D1 identifiers and shipping facts."""

    def operation_id(self) -> str:
        # faker's uuid4() without building a UUID: the same 128 bits, version 4, variant 10.
        bits = self.generator.random.getrandbits(128) & ~(0xF000 << 64 | 0xC000 << 48)
        h = f"{bits | 4 << 76 | 0x8000 << 48:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def card_id(self) -> str:
        return _fill("^^^^-^^^^-^^^^-^^^^", self.generator.random, _HEX)

    # random_element of a tuple is random.choice through four calls: a test holds them equal.
    def production_site(self) -> str:
        return self.generator.random.choice(PRODUCTION_SITES)

    def carrier(self) -> Carrier:
        return self.generator.random.choice(CARRIERS)

    def tracking_number(self, carrier: Carrier) -> str:
        return _fill(carrier.tracking_pattern, self.generator.random, "ABCDEFGHJKLMNPRSTUVWXYZ")

    def checkpoint_place(self, country: str) -> tuple[str, str]:
        return self.generator.random.choice(CHECKPOINT_PLACES[country]), country

    def input_file_name(self) -> str:
        draw = self.generator.random
        return f"ORDERS_{_fill('########', draw, '')}_{_fill('###', draw, '')}.csv"

    def issuer_request_id(self) -> str:
        return _fill("REQ-########-????", self.generator.random, string.ascii_letters).upper()


@dataclass(slots=True)
class Order:
    """The facts shared by every notification of one order (one operationId)."""

    operation_id: str
    card_id: str
    start: datetime
    due_date: str
    site: str
    carrier: Carrier
    tracking_number: str
    correlation: dict[str, str] = field(default_factory=dict)
    ended: datetime | None = None  # when the operation first reached SUCCESSFUL/FAILED
    facts_known: bool = False  # a report carried dueDate/productionSite (an ifKnown state repeats them)


class PayloadFactory:
    """Builds consistent operations for any status; same seed, same payloads."""

    def __init__(self, seed: int = 0, *, model: Lifecycle | None = None, start: datetime = DEFAULT_START) -> None:
        self.model = model or load_lifecycle()
        # A bare generator with just the providers used: a full Faker() costs ~0.8 ms to build,
        # which dominated expanding a scenario with one factory per order.
        self.fake: Any = Generator()
        for provider in (MiscProvider, D1Provider):
            self.fake.add_provider(provider)
        self.fake.seed_instance(seed)
        self.start = start

    def new_order(self, *, card_id: str | None = None, start: datetime | None = None,
                  correlated: bool = False) -> Order:
        """A new order; ``correlated`` adds inputFileName and issuerRequestId (file-based issuance)."""
        fake = self.fake
        start = start or self.start
        carrier = fake.carrier()
        correlation = {"inputFileName": fake.input_file_name(),
                       "issuerRequestId": fake.issuer_request_id()} if correlated else {}
        due = (start + timedelta(days=fake.random_int(2, 6))).date().isoformat()
        return Order(fake.operation_id(), card_id or fake.card_id(), start, due,
                     fake.production_site(), carrier, fake.tracking_number(carrier), correlation)

    def operation(self, order: Order, status: str, at: datetime, *, update: int = 0) -> dict[str, Any]:
        """The operation reporting ``status`` for ``order`` at time ``at``.

        ``update`` numbers repeated reports of a repeatable status (CARD_SHIPPED): 0 is the first
        (estimated delivery only), 1.. carry tracking with ``lastUpdatedAt = at``.
        Unknown statuses get a PENDING operation with only ``details.status``.
        """
        state = self.model.states.get(status)
        op_status = state.operation_status if state else "PENDING"
        op: dict[str, Any] = {"operationId": order.operation_id, "operation": self.model.operation,
                              "status": op_status, "startTime": format_time(order.start)}
        if self.model.end_time_expected(op_status):
            order.ended = order.ended or at  # repeated reports keep the first end time
            op["endTime"] = format_time(order.ended)
        op["cardId"] = order.card_id
        op["details"] = self._details(order, state, at, update) if state else {"status": status}
        if state and state.error_code:
            op["errorCode"], op["error"] = "FIELD_INVALID_FORMAT", self.fake.random_element(EXCEPTION_FIELDS)
        op.update(order.correlation)
        return op

    def _details(self, order: Order, state: State, at: datetime, update: int) -> dict[str, Any]:
        """The state's details, with exactly the fields its columns in the model say it carries."""
        details: dict[str, Any] = {"status": state.name}
        if state.carries_production_facts(order.facts_known):
            details["dueDate"], details["productionSite"] = order.due_date, order.site
            order.facts_known = True
        if state.reason:
            details["reason"] = state.reason
        if state.repeatable:
            details["shipment"] = self.shipment(order, at, update)
        details.update(order.correlation)
        return details

    def shipment(self, order: Order, at: datetime, update: int) -> dict[str, Any]:
        """Shipment tracking: the first report has only an estimate, later ones full tracking."""
        eta = datetime.combine(datetime.fromisoformat(order.due_date), at.timetz()) + timedelta(days=3)
        if update == 0:
            return {"estimatedDeliveryDate": format_time(eta)}
        carrier = order.carrier
        status, message = SHIPMENT_PROGRESS[min(update, len(SHIPMENT_PROGRESS)) - 1]
        city, country = self.fake.checkpoint_place(carrier.country)
        return {"carrier": carrier.code, "trackingNumber": order.tracking_number, "status": status,
                "message": message, "trackingUrl": carrier.tracking_url.format(n=order.tracking_number),
                "estimatedDeliveryDate": format_time(eta), "lastUpdatedAt": format_time(at),
                "lastCheckpoint": {"checkpointTime": format_time(at), "city": city,
                                   "countryName": country, "message": message}}

    def happy_path(self) -> tuple[str, ...]:
        return self.model.main_path

    def lifecycle(self, path: Sequence[str] | None = None, *, shipment_updates: int = 3,
                  card_id: str | None = None, start: datetime | None = None,
                  step: timedelta = timedelta(hours=6)) -> list[dict[str, Any]]:
        """The operations of one order along ``path`` (default: the main path), in true order.

        A repeatable final state is reported ``1 + shipment_updates`` times.
        """
        order = self.new_order(card_id=card_id, start=start)
        path = list(path or self.happy_path())
        if path and self.model.is_known(path[-1]) and self.model.states[path[-1]].repeatable:
            path += [path[-1]] * shipment_updates
        ops, at, update = [], order.start, 0
        for i, status in enumerate(path):
            update = update + 1 if i and status == path[i - 1] else 0
            ops.append(self.operation(order, status, at, update=update))
            at += step
        return ops


def notification(operations: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Wrap operations into a notification body."""
    return {"operations": [dict(op) for op in operations]}


def minimal_operation(op: Mapping[str, Any], model: Lifecycle | None = None) -> dict[str, Any]:
    """Keep only the fields the schemas require (plus endTime where the lifecycle demands it)."""
    model = model or load_lifecycle()
    keep = set(load_document("operation.schema.json")["required"])
    if model.end_time_expected(str(op.get("status"))):
        keep.add("endTime")
    slim = {k: v for k, v in op.items() if k in keep}
    if isinstance(op.get("details"), Mapping):
        required = load_document("details.schema.json")["required"]
        slim["details"] = {k: v for k, v in op["details"].items() if k in required}
    return slim
