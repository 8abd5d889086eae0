"""A delivery: one planned POST of a notification body, the unit the outbox stores and sends."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification POST planned by a scenario expansion.

    ``due`` is virtual seconds after the scenario's start; ``body`` the exact bytes to send;
    ``key`` orders deliveries that must stay in sequence (one card's, unless reordered);
    ``fault`` labels the fault that made or changed it, if any.
    """

    seq: int
    due: float
    body: bytes
    card_ids: tuple[str, ...]
    statuses: tuple[str, ...]
    correlation_id: str
    scenario: str
    key: str
    fault: str | None = None
