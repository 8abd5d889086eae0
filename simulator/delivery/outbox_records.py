"""What the outbox stores, as values: a run, a stored delivery and one attempt of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from d1sim.contracts.scenario.timeline import Delivery

RESPONSE_EXCERPT = 500


@dataclass(frozen=True, slots=True)
class Run:
    """One simulation run: what was planned against which target, and how far it got."""

    id: str
    created: str
    name: str
    target: str
    options: dict[str, Any]
    fingerprint: str | None
    status: str  # "running" only while a live sender holds the lease, else "interrupted"
    lease_owner: str | None = None
    lease_expires: float | None = None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Run:
        return cls(row[0], row[1], row[2], row[3], orjson.loads(row[4]), row[5], row[6], *row[7:9])


Headers = tuple[tuple[str, str], ...]
"""Request headers as (name, value) pairs, in the order they were sent."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST of a delivery; ``number`` is assigned by the outbox when it is recorded.

    ``request_headers``: what the POST carried, as the sender built it (the outbox masks every
    credential before storing). ``()``: no request went out (the token endpoint failed first);
    None: the sender did not say, or the attempt was recorded before d1sim kept headers.
    """

    started_at: float  # Unix time
    status_code: int | None  # None: timeout or connection error, see ``error``
    latency_ms: float
    response: bytes = b""  # the first RESPONSE_EXCERPT bytes of the answer
    error: str | None = None
    warning: str | None = None
    number: int = 0
    request_headers: Headers | None = None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Attempt:
        number, started, status, latency, response, error, warning, headers = row
        return cls(started, status, latency, bytes(response), error, warning, number, headers_from_json(headers))


def headers_to_json(headers: Headers | None) -> str | None:
    """Headers as stored: a JSON array of [name, value] pairs (None stays NULL)."""
    return None if headers is None else orjson.dumps(headers).decode()


def headers_from_json(stored: str | bytes | None) -> Headers | None:
    """The pairs :func:`headers_to_json` stored (None for an attempt recorded without them)."""
    if stored is None:
        return None
    return tuple((str(name), str(value)) for name, value in orjson.loads(stored))


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """A planned delivery as stored: its outbox id, state and retry bookkeeping."""

    id: int
    run_id: str
    delivery: Delivery
    state: str = "pending"
    attempts: int = 0  # since it was (re)queued: what the retry budget counts
    last_status: int | None = None
    last_error: str | None = None
    next_attempt_at: float | None = None  # Unix time of a scheduled retry
    history: tuple[Attempt, ...] = ()

    @classmethod
    def from_row(cls, row: tuple[Any, ...], history: tuple[Attempt, ...] = ()) -> StoredDelivery:
        delivery = Delivery(
            seq=row[2],
            due=row[3],
            key=row[4],
            body=bytes(row[5]),
            card_ids=tuple(orjson.loads(row[6])),
            statuses=tuple(orjson.loads(row[7])),
            correlation_id=row[8],
            scenario=row[9],
            fault=row[10],
        )
        state, attempts, last_status, last_error, next_attempt_at = row[11:16]
        return cls(
            row[0],
            row[1],
            delivery,
            state,
            attempts,
            last_status,
            last_error,
            next_attempt_at,
            history,
        )


AttemptRow = tuple[int, Attempt, str, float | None]


def delivery_fields(d: Delivery) -> tuple[Any, ...]:
    """A delivery as plain values in field order, to cross a pipe (pickled several times faster
    than the dataclass); ``Delivery(*fields)`` makes it again."""
    return (d.seq, d.due, d.body, d.card_ids, d.statuses, d.correlation_id, d.scenario, d.key, d.fault)
