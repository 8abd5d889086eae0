"""The scenario as a value: cards, steps, batching, faults and expectations, and the notices
every card reports (``Scenario.path``).

Plain frozen dataclasses, built by :mod:`d1sim.contracts.scenario.loading` from a document or by
hand (the mock D1 turns an order into one). :mod:`d1sim.contracts.scenario.checks` reads them and
:mod:`d1sim.contracts.scenario.expansion` plans deliveries from them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from d1sim.contracts.lifecycle.model import Lifecycle, load_lifecycle
from d1sim.contracts.protocol import DEFAULT_ISSUER_ID
from d1sim.contracts.scenario.faults import Fault

DEFAULT_ISSUER = DEFAULT_ISSUER_ID
DEFAULT_EVERY = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Step:
    """One status every card reports, ``after`` the previous one, with optional overrides."""

    status: str
    after: timedelta = timedelta()
    unknown: bool = False
    updates: int = 0
    every: timedelta = DEFAULT_EVERY
    details: Mapping[str, Any] | None = None
    shipment: Mapping[str, Any] | None = None
    operation: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification of every card's path: position (from 1), offset from the card's start."""

    index: int
    status: str
    offset: timedelta
    update: int
    step: Step
    step_index: int  # position of the step in the file (from 0)


@dataclass(frozen=True, slots=True)
class Cards:
    """The cards: explicit ids, or ``count`` generated ones; their starts are ``spacing`` apart."""

    ids: tuple[str, ...] = ()
    count: int = 1
    spacing: timedelta = timedelta()
    correlated: bool = False
    per_file: int = 1

    @property
    def total(self) -> int:
        return len(self.ids) or self.count


@dataclass(frozen=True, slots=True)
class Batching:
    """At most ``max`` operations per POST; ``mix`` lets one POST carry several cards."""

    max: int = 10
    mix: bool = True
    window: timedelta = timedelta()


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a run of the scenario must show."""

    all_delivered: bool = True
    responses: tuple[str, ...] = ("2xx",)
    end_state: bool = True


@dataclass(frozen=True, slots=True)
class Scenario:
    """A checked scenario; build one in code, or load one with :func:`load_scenario_text`."""

    name: str
    description: str
    seed: int
    steps: tuple[Step, ...]
    cards: Cards = Cards()
    batching: Batching = Batching()
    faults: tuple[Fault, ...] = ()
    expect: Expectations = Expectations()
    issuer_id: str = DEFAULT_ISSUER
    receiver: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<scenario>"

    @property
    def path(self) -> tuple[Notice, ...]:
        """Every card's notifications in true order, shipment updates unrolled."""
        return unroll(self.steps, load_lifecycle())


def unroll(steps: tuple[Step, ...], model: Lifecycle) -> tuple[Notice, ...]:
    """The notices of ``steps``: ``updates: N`` becomes N more notices, ``every`` apart."""
    notices: list[Notice] = []
    seen: Counter[str] = Counter()  # notices so far per status: the next update's number
    offset = timedelta()
    for i, step in enumerate(steps):
        offset += step.after
        repeats = _repeats(step, model)
        for extra in range(1 + step.updates):
            offset += step.every if extra else timedelta()
            update = seen[step.status] if repeats else 0
            notices.append(Notice(len(notices) + 1, step.status, offset, update, step, i))
            seen[step.status] += 1
    return tuple(notices)


def _repeats(step: Step, model: Lifecycle) -> bool:
    return model.is_known(step.status) and model.states[step.status].repeatable
