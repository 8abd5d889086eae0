"""Payloads d1sim builds: PRODUCE notifications from the lifecycle, and inbound card orders.

Modules: ``factory`` (deterministic, realistic notifications for a card's lifecycle),
``inbound`` (the physical-card order D1 receives, its checks and a sample).

>>> from d1sim.contracts.payloads import PayloadFactory
>>> [op["details"]["status"] for op in PayloadFactory(seed=1).lifecycle()][-1]
'CARD_SHIPPED'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from d1sim.contracts.payloads.factory import PayloadFactory, notification
    from d1sim.contracts.payloads.inbound import sample_order

# Loaded on first use: ``times`` alone must not load faker (a replay's start-up).
_HOMES = {"PayloadFactory": "factory", "notification": "factory", "sample_order": "inbound"}

__all__ = ["PayloadFactory", "notification", "sample_order"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
