"""Payloads d1sim builds: PRODUCE notifications from the lifecycle, and inbound card orders.

Modules: ``factory`` (deterministic, realistic notifications for a card's lifecycle),
``inbound`` (the physical-card order D1 receives, its checks and a sample).

>>> from d1sim.contracts.payloads import PayloadFactory
>>> [op["details"]["status"] for op in PayloadFactory(seed=1).lifecycle()][-1]
'CARD_SHIPPED'
"""

from d1sim.contracts.payloads.factory import PayloadFactory, notification
from d1sim.contracts.payloads.inbound import sample_order

__all__ = ["PayloadFactory", "notification", "sample_order"]
