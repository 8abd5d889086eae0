"""The registry of receiver checks: each check is a named row, added with ``@check``.

A check is a predicate named after the property that must hold (docs/d1-produce.md section 7), a
hypothesis strategy for its input, and what it needs (a state probe, configured auth). Adding a
check is adding a decorated function; selecting checks is naming them.

Example::

    >>> from d1sim.contracts.checks.registry import UnknownCheck, select_checks
    >>> [c.id for c in select_checks(["converges_out_of_order"])]
    ['converges_out_of_order']
    >>> try:
    ...     select_checks(["converge_out_of_order"])
    ... except UnknownCheck as exc:
    ...     print(exc.suggestion)
    converges_out_of_order
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis.strategies import SearchStrategy

from d1sim.contracts.checks.model import CheckContext, CheckFailure
from d1sim.contracts.checks.trial import Trial

CheckFunction = Callable[[Trial, Any], CheckFailure | None]
StrategyFactory = Callable[[CheckContext], SearchStrategy[Any]]
F = TypeVar("F", bound=CheckFunction)

# Families of built-in checks, imported on first use; their order is section 7's order.
FAMILIES = ("acceptance", "state", "auth", "robustness")


class UnknownCheck(ValueError):
    """A check id that is not registered; the message suggests the closest ids."""

    def __init__(self, check_id: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(check_id, list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(f"unknown check {check_id!r}{hint}")
        self.check_id, self.suggestion = check_id, close[0] if close else None


@dataclass(frozen=True)
class Check:
    """One registered check.

    ``shrink`` is False for checks whose failures do not depend on the input's shape (timing):
    shrinking them would cost a timeout per step and replay unreliably.
    """

    id: str
    function: CheckFunction
    strategy: StrategyFactory
    needs_state: bool = False
    needs_auth: bool = False
    shrink: bool = True

    @property
    def summary(self) -> str:
        """What must hold: the first line of the check's docstring."""
        return (self.function.__doc__ or self.id).strip().splitlines()[0]

    def skip_reason(self, context: CheckContext) -> str | None:
        """Why this check cannot run with ``context`` (None: it can)."""
        if self.needs_state and context.probe is None:
            return "needs a state probe (--state-url, or probe= from Python)"
        if self.needs_auth and context.auth is None:
            return "no auth configured for the receiver, so there is nothing to reject"
        return None


_REGISTRY: dict[str, Check] = {}


def check(
    check_id: str,
    *,
    strategy: StrategyFactory,
    needs_state: bool = False,
    needs_auth: bool = False,
    shrink: bool = True,
) -> Callable[[F], F]:
    """Register the decorated function as check ``check_id`` (its name must be the id).

    Args:
        check_id: the stable id users select with ``--checks``.
        strategy: builds the hypothesis strategy of the check's input from the context.
        needs_state: the check means nothing without a state probe (skipped without one).
        needs_auth: the check means nothing without configured auth (skipped without it).
        shrink: let hypothesis shrink a failing example to a minimal one.
    Raises:
        ValueError: the id is taken, or the function is named differently.
    """

    def register(function: F) -> F:
        if function.__name__ != check_id:
            raise ValueError(f"check {check_id!r} must be a function named {check_id}")
        if check_id in _REGISTRY:
            raise ValueError(f"check {check_id!r} is already registered")
        _REGISTRY[check_id] = Check(check_id, function, strategy, needs_state, needs_auth, shrink)
        return function

    return register


def load_builtin() -> None:
    """Import the built-in check families (registering them once, in the contract's order)."""
    for family in FAMILIES:
        importlib.import_module(f"d1sim.contracts.checks.{family}")


def registered() -> dict[str, Check]:
    """Every registered check by id, built-in ones first in the contract's order."""
    load_builtin()
    return dict(_REGISTRY)


def check_ids() -> list[str]:
    """The ids of every registered check."""
    return list(registered())


def select_checks(ids: Iterable[str] | None = None) -> list[Check]:
    """The checks named by ``ids`` (all when None), in registry order, each once.

    Raises:
        UnknownCheck: an id is not registered (the message has a did-you-mean).
    """
    checks = registered()
    if ids is None:
        return list(checks.values())
    wanted = list(dict.fromkeys(ids))
    for check_id in wanted:
        if check_id not in checks:
            raise UnknownCheck(check_id, checks)
    return [c for c in checks.values() if c.id in wanted]
