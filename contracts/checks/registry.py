"""Receiver checks as values: ``@check`` marks a function, a :class:`Registry` is a table of them.

A check is a predicate named after the property that must hold (docs/d1-produce.md section 7), a
hypothesis strategy for its input, and what it needs (a state probe, configured auth). Nothing
is registered as a side effect of importing: a registry is built from the checks it holds
(``DEFAULT_CHECKS`` in :mod:`d1sim.contracts.checks.builtin` from the built-in families), and
adding a check is ``DEFAULT_CHECKS.with_checks(my_check)``.

Example::

    >>> from d1sim.contracts.checks.builtin import DEFAULT_CHECKS
    >>> from d1sim.contracts.checks.registry import UnknownCheck
    >>> [c.id for c in DEFAULT_CHECKS.select(["converges_out_of_order"])]
    ['converges_out_of_order']
    >>> try:
    ...     DEFAULT_CHECKS.select(["converge_out_of_order"])
    ... except UnknownCheck as exc:
    ...     print(exc.suggestion)
    converges_out_of_order
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from hypothesis.strategies import SearchStrategy

from d1sim.contracts.checks.model import CheckContext, CheckFailure
from d1sim.contracts.checks.trial import Trial

CheckFunction = Callable[[Trial, Any], CheckFailure | None]
StrategyFactory = Callable[[CheckContext], SearchStrategy[Any]]
F = TypeVar("F", bound=CheckFunction)

# Where @check leaves the Check on the function it marks.
CHECK_ATTRIBUTE = "__d1sim_check__"


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


def check(
    check_id: str,
    *,
    strategy: StrategyFactory,
    needs_state: bool = False,
    needs_auth: bool = False,
    shrink: bool = True,
) -> Callable[[F], F]:
    """Mark the decorated function as check ``check_id`` (its name must be the id).

    The function is returned as it is, carrying its :class:`Check`; a :class:`Registry` built
    with it (or :func:`checks_of` its module) holds it.

    Args:
        check_id: the stable id users select with ``--checks``.
        strategy: builds the hypothesis strategy of the check's input from the context.
        needs_state: the check means nothing without a state probe (skipped without one).
        needs_auth: the check means nothing without configured auth (skipped without it).
        shrink: let hypothesis shrink a failing example to a minimal one.
    Raises:
        ValueError: the function is named differently.
    """

    def mark(function: F) -> F:
        if function.__name__ != check_id:
            raise ValueError(f"check {check_id!r} must be a function named {check_id}")
        entry = Check(check_id, function, strategy, needs_state, needs_auth, shrink)
        setattr(function, CHECK_ATTRIBUTE, entry)
        return function

    return mark


def as_check(item: Check | CheckFunction) -> Check:
    """The :class:`Check` itself, or the one ``@check`` left on a function.

    Raises:
        TypeError: ``item`` is neither.
    """
    if isinstance(item, Check):
        return item
    entry = getattr(item, CHECK_ATTRIBUTE, None)
    if not isinstance(entry, Check):
        raise TypeError(f"{item!r} is not a check: mark it with @check(...)")
    return entry


def checks_of(module: ModuleType) -> list[Check]:
    """The checks a module defines with ``@check``, in the order it defines them."""
    return [
        as_check(value)
        for value in vars(module).values()
        if isinstance(getattr(value, CHECK_ATTRIBUTE, None), Check)
        and getattr(value, "__module__", None) == module.__name__
    ]


class Registry(Mapping[str, Check]):
    """An ordered, unchangeable table of checks by id; adding checks makes a new registry.

    Raises:
        ValueError: two checks share an id.
    """

    def __init__(self, checks: Iterable[Check | CheckFunction] = ()) -> None:
        table: dict[str, Check] = {}
        for item in checks:
            entry = as_check(item)
            if entry.id in table:
                raise ValueError(f"check {entry.id!r} is already registered")
            table[entry.id] = entry
        self._table = table

    def __getitem__(self, check_id: str) -> Check:
        return self._table[check_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"Registry({list(self._table)})"

    def with_checks(self, *checks: Check | CheckFunction) -> Registry:
        """This registry's checks followed by ``checks`` (an integrator's own run after these)."""
        return Registry([*self._table.values(), *checks])

    def select(self, ids: Iterable[str] | None = None) -> list[Check]:
        """The checks named by ``ids`` (all when None), in registry order, each once.

        Raises:
            UnknownCheck: an id is not in the registry (the message has a did-you-mean).
        """
        if ids is None:
            return list(self._table.values())
        wanted = list(dict.fromkeys(ids))
        for check_id in wanted:
            if check_id not in self._table:
                raise UnknownCheck(check_id, self._table)
        return [c for c in self._table.values() if c.id in wanted]
