"""The checks a scenario must pass beyond its schema: statuses, transitions, fault parameters.

Each check yields ``(path, message)`` pairs; the loader turns the first into a located
:class:`~d1sim.contracts.scenario.source.ScenarioError`, and code that builds a ``Scenario`` by hand
(the mock D1 turning an order into a scenario) can call :func:`scenario_problems` directly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from d1sim.contracts.lifecycle import Lifecycle, load_lifecycle
from d1sim.contracts.scenario.durations import LONGEST
from d1sim.contracts.scenario.faults import FAULTS, Fault
from d1sim.contracts.scenario.source import Path, did_you_mean

if TYPE_CHECKING:
    from d1sim.contracts.scenario.loading import Notice, Scenario, Step

Problem = tuple[Path, str]


def scenario_problems(scenario: Scenario, model: Lifecycle | None = None) -> Iterator[Problem]:
    """Every problem of ``scenario`` against the lifecycle model and the fault table."""
    model = model or load_lifecycle()
    if not scenario.steps:
        yield ("steps",), "a scenario needs at least one step"
        return
    yield from _status_problems(scenario.steps, model)
    yield from _transition_problems(scenario.steps, model)
    yield from _update_problems(scenario.steps, model)
    yield from _stamp_problems(scenario.path)
    if scenario.cards.per_file > 1 and not scenario.cards.correlated:
        yield ("cards", "per_file"), "per_file needs correlated: true"
    yield from _clock_problems(scenario)
    for j, fault in enumerate(scenario.faults):
        yield from fault_problems(fault, j, len(scenario.path), model)


def _clock_problems(scenario: Scenario) -> Iterator[Problem]:
    # Virtual times are datetimes: a run must end well inside their range.
    span = (scenario.cards.total - 1) * scenario.cards.spacing + scenario.path[-1].offset
    if span > LONGEST * 10:
        last_step = ("steps", len(scenario.steps) - 1, "after")
        where = ("cards", "spacing") if scenario.cards.spacing else last_step
        yield where, f"the run would last {span.days} days; keep it under {LONGEST.days * 10}"


def _status_problems(steps: Sequence[Step], model: Lifecycle) -> Iterator[Problem]:
    for i, step in enumerate(steps):
        known = model.is_known(step.status)
        if not known and not step.unknown:
            hint = did_you_mean(step.status, model.states)
            yield (("steps", i, "status"), f"unknown status '{step.status}'{hint}; "
                   "mark a deliberate one with unknown: true")
        elif known and step.unknown:
            yield ("steps", i, "unknown"), f"'{step.status}' is a known status: drop unknown: true"


def _transition_problems(steps: Sequence[Step], model: Lifecycle) -> Iterator[Problem]:
    before: str | None = None
    for i, step in enumerate(steps):
        if not model.is_known(step.status):
            continue  # unknown statuses never move the state, so they sit anywhere
        if before is not None and not model.reachable(before, step.status):
            yield ("steps", i, "status"), _illegal(before, step.status, model)
        before = step.status


def _illegal(before: str, after: str, model: Lifecycle) -> str:
    nexts = ", ".join(sorted(model.successors[before])) or "nothing (it is terminal)"
    message = (f"{after} cannot follow {before} in the {model.operation} lifecycle "
               f"(after {before}: {nexts})")
    if after == before:
        return message + "; to deliver a notification twice use the duplicate fault"
    return message + "; to deliver statuses out of order use the reorder or stale fault"


def _update_problems(steps: Sequence[Step], model: Lifecycle) -> Iterator[Problem]:
    repeatable = [s.name for s in model.states.values() if s.repeatable]
    for i, step in enumerate(steps):
        if step.updates and step.status not in repeatable:
            yield (("steps", i, "updates"),
                   f"updates only apply to a repeatable status ({', '.join(repeatable)})")


def _stamp_problems(path: Sequence[Notice]) -> Iterator[Problem]:
    # A receiver orders shipment updates by lastUpdatedAt, which must grow from one to the next.
    latest: dict[str, timedelta] = {}
    for before, notice in zip((None, *path), path, strict=False):
        if notice.update and latest.get(notice.status) == notice.offset:
            repeat = before is not None and before.step_index == notice.step_index
            yield (("steps", notice.step_index, "every" if repeat else "after"),
                   f"{notice.status} update {notice.update} comes at the same time as the one "
                   "before; its lastUpdatedAt must be later")
        latest[notice.status] = notice.offset


def fault_problems(fault: Fault, j: int, path_length: int, model: Lifecycle) -> Iterator[Problem]:
    """The problems of the ``j``-th fault, for a path of ``path_length`` notifications."""
    row = FAULTS.get(fault.kind)
    if row is None:
        yield (("faults", j, "kind"), f"unknown fault kind '{fault.kind}'"
               f"{did_you_mean(fault.kind, FAULTS)}; known kinds: {', '.join(FAULTS)}")
        return
    for name in fault.params:
        if name not in row.defaults:
            yield (("faults", j, name),
                   f"'{name}' does not apply to {fault.kind}; it takes: {', '.join(row.defaults)}")
    yield from _step_problems(fault, j, path_length)
    yield from _reorder_problems(fault, j)
    status = fault.params.get("status")
    if status is not None and model.is_known(status):
        yield (("faults", j, "status"),
               f"'{status}' is a known status; {fault.kind} needs one the model does not know")


def _step_problems(fault: Fault, j: int, path_length: int) -> Iterator[Problem]:
    last = path_length - 1 if fault.kind == "stale" else path_length  # stale needs a later one
    beyond = sorted(n for n in fault.steps or () if n > last)
    if beyond:
        yield (("faults", j, "step"), f"step {beyond[0]} is past the last notification "
               f"{fault.kind} can use ({last} of the card's {path_length})")


def _reorder_problems(fault: Fault, j: int) -> Iterator[Problem]:
    permutation = fault.params.get("permutation")
    if permutation is None:
        return
    if "window" in fault.params:
        yield ("faults", j, "window"), "give window or permutation, not both"
    if sorted(permutation) != list(range(len(permutation))):
        yield (("faults", j, "permutation"),
               f"a permutation lists 0..{len(permutation) - 1} once each, got {permutation}")
