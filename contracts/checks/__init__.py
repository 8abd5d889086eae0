"""Receiver conformance checks: the contract of d1-produce.md section 7 as named properties.

Each check is a registered function with a hypothesis strategy for its input; it talks to the
receiver only through a :class:`Transport` and a state :data:`Probe` given in a
:class:`CheckContext`, and returns a :class:`CheckFailure` value when the property breaks. The
hypothesis runner and the HTTP/WSGI transports live at the edge (``d1sim.simulator.check.runner``,
``d1sim.simulator.check.transport``).

Example::

    >>> from d1sim.contracts.checks import check_ids
    >>> check_ids()[:2]
    ['accepts_valid_notification', 'accepts_batches']
"""

from d1sim.contracts.checks.ids import IdMint, fresh_notification, fresh_operations
from d1sim.contracts.checks.model import (
    DEFAULT_ISSUER_ID,
    DEFAULT_MAX_BATCH,
    DEFAULT_TIMEOUT,
    CheckContext,
    CheckFailure,
    CheckOutcome,
    Exchange,
    NoReply,
    Probe,
    ProbeError,
    Reply,
    Transport,
)
from d1sim.contracts.checks.registry import (
    Check,
    UnknownCheck,
    check,
    check_ids,
    load_builtin,
    registered,
    select_checks,
)
from d1sim.contracts.checks.trial import Trial

# Built-in checks come first, so checks an integrator registers run after the contract's.
load_builtin()

__all__ = [
    "DEFAULT_ISSUER_ID",
    "DEFAULT_MAX_BATCH",
    "DEFAULT_TIMEOUT",
    "Check",
    "CheckContext",
    "CheckFailure",
    "CheckOutcome",
    "Exchange",
    "IdMint",
    "NoReply",
    "Probe",
    "ProbeError",
    "Reply",
    "Transport",
    "Trial",
    "UnknownCheck",
    "check",
    "check_ids",
    "fresh_notification",
    "fresh_operations",
    "load_builtin",
    "registered",
    "select_checks",
]
