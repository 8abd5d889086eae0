"""Hypothesis strategies for D1 PRODUCE notifications, for integrators' own tests.

Built straight from the lifecycle model (``schemas/produce-lifecycle.json``) and the vocabulary
with hypothesis primitives, not through a schema-to-strategy converter: they are fast, always
valid where they promise validity, and shrink to small readable examples (one operation, the
first carrier, the first site, times at a fixed epoch). Bad arguments never raise when a
strategy is built; drawing from it fails with a message saying what was wrong.

Example::

    from hypothesis import given
    from d1sim.contracts.strategies import notifications

    @given(notifications())
    def test_receiver_accepts_every_valid_notification(body):
        assert client.post(URL, json=body).status_code == 204
"""

from d1sim.contracts.strategies.extensions import (
    operations_with_unknown_status,
    unknown_statuses,
    with_unknown_fields,
)
from d1sim.contracts.strategies.histories import arrival_orders, lifecycles, shuffled_lifecycles
from d1sim.contracts.strategies.malformed import (
    InvalidNotification,
    invalid_notifications,
    non_json_bodies,
)
from d1sim.contracts.strategies.payloads import (
    minimal_notifications,
    notifications,
    operations,
)
from d1sim.contracts.strategies.values import EPOCH

__all__ = [
    "EPOCH",
    "InvalidNotification",
    "arrival_orders",
    "invalid_notifications",
    "lifecycles",
    "minimal_notifications",
    "non_json_bodies",
    "notifications",
    "operations",
    "operations_with_unknown_status",
    "shuffled_lifecycles",
    "unknown_statuses",
    "with_unknown_fields",
]
