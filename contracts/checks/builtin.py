"""The built-in receiver checks as one explicit value, ``DEFAULT_CHECKS``, in the contract's order.

Built from the family modules' own ``@check`` functions (section 7's order: acceptance, state,
auth, robustness); nothing is filled in as a side effect of an import. The helpers below take
the registry to use, defaulting to this one.

Example::

    >>> from d1sim.contracts.checks.builtin import DEFAULT_CHECKS, check_ids
    >>> check_ids()[:2] == list(DEFAULT_CHECKS)[:2] == ['accepts_valid_notification', 'accepts_batches']
    True
"""

from __future__ import annotations

from collections.abc import Iterable

import d1sim.contracts.checks.acceptance as acceptance
import d1sim.contracts.checks.auth as auth
import d1sim.contracts.checks.robustness as robustness
import d1sim.contracts.checks.state as state
from d1sim.contracts.checks.registry import Check, Registry, checks_of

FAMILIES = (acceptance, state, auth, robustness)
DEFAULT_CHECKS = Registry([entry for family in FAMILIES for entry in checks_of(family)])


def registered(registry: Registry = DEFAULT_CHECKS) -> dict[str, Check]:
    """Every check of ``registry`` by id, in its order."""
    return dict(registry)


def check_ids(registry: Registry = DEFAULT_CHECKS) -> list[str]:
    """The ids of every check of ``registry``."""
    return list(registry)


def select_checks(ids: Iterable[str] | None = None, registry: Registry = DEFAULT_CHECKS) -> list[Check]:
    """The checks of ``registry`` named by ``ids`` (all when None); see :meth:`Registry.select`."""
    return registry.select(ids)
