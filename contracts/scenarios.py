"""Scenarios: which cards go through which statuses, when, batched how, with which faults.

A scenario is a YAML document checked against ``schemas/scenario.schema.json`` and then against
the lifecycle model; docs/scenarios.md is the format reference. Loading is pure: text in,
:class:`Scenario` out, or a :class:`ScenarioError` naming the line and the field.

Example::

    >>> from d1sim.contracts.scenario.loading import load_scenario_text
    >>> s = load_scenario_text('''
    ... name: demo
    ... description: One card, prepared then rejected.
    ... seed: 7
    ... steps:
    ...   - status: CARD_PROD_REQUESTED
    ...   - {status: DATA_PREPARED, after: 90s}
    ...   - {status: DATA_EXCEPTION, after: 4h}
    ... ''', "demo.yaml")
    >>> [str(n.offset) for n in s.path]
    ['0:00:00', '0:01:30', '4:01:30']
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path as FilePath
from typing import Any

from d1sim.contracts.lifecycle import Lifecycle, load_lifecycle
from d1sim.contracts.scenario.checks import scenario_problems
from d1sim.contracts.scenario.durations import DurationError, parse_duration
from d1sim.contracts.scenario.faults import Fault
from d1sim.contracts.scenario.schema import check_against_schema
from d1sim.contracts.scenario.source import ScenarioError, did_you_mean, read_source

__all__ = [
    "Batching",
    "Cards",
    "Expectations",
    "Fault",
    "Notice",
    "Scenario",
    "ScenarioError",
    "Step",
    "bundled_scenarios",
    "load_bundled",
    "load_scenario_file",
    "load_scenario_text",
]

DEFAULT_ISSUER = "ISSUER0001"
DEFAULT_EVERY = timedelta(hours=12)
DURATIONS = {
    "cards": ("spacing",),
    "batching": ("window",),
    "steps": ("after", "every"),
    "faults": ("delay", "jitter", "after"),
}


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
    offset = timedelta()
    for i, step in enumerate(steps):
        offset += step.after
        for extra in range(1 + step.updates):
            offset += step.every if extra else timedelta()
            update = (
                sum(1 for n in notices if n.status == step.status) if _repeats(step, model) else 0
            )
            notices.append(Notice(len(notices) + 1, step.status, offset, update, step, i))
    return tuple(notices)


def _repeats(step: Step, model: Lifecycle) -> bool:
    return model.is_known(step.status) and model.states[step.status].repeatable


def load_scenario_text(text: str, source: str = "<string>") -> Scenario:
    """Parse and check a scenario document (YAML or JSON).

    Args:
        text: the document.
        source: a name for messages, usually the file path.
    Returns:
        The :class:`Scenario`.
    Raises:
        ScenarioError: with ``source``, ``line``, ``column``, ``path`` and a message that
            suggests the likely key or status when one is misspelt.
    """
    doc = read_source(text, source)
    if not isinstance(doc.data, dict):
        raise doc.error((), "a scenario is a mapping with name, description, seed and steps")
    check_against_schema(doc)
    for path, message in _duration_problems(doc.data):
        raise doc.error(path, message)
    scenario = scenario_from_data(doc.data, source)
    for where, problem in scenario_problems(scenario):
        raise doc.error(where, problem)
    return scenario


def _duration_problems(data: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    # The schema checks the spelling; only parsing finds a duration too long for the clock.
    places: list[tuple[tuple[str | int, ...], Any]] = [
        (("cards",), data.get("cards")),
        (("batching",), data.get("batching")),
    ]
    places += [(("steps", i), step) for i, step in enumerate(data["steps"])]
    places += [(("faults", j), fault) for j, fault in enumerate(data.get("faults", ()))]
    for base, raw in places:
        for name in DURATIONS[str(base[0])]:
            if isinstance(raw, dict) and name in raw:
                try:
                    parse_duration(raw[name])
                except DurationError as exc:
                    yield (*base, name), str(exc)


def scenario_from_data(data: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    """Build a :class:`Scenario` from schema-valid data (no lifecycle checks)."""
    return Scenario(
        name=data["name"],
        description=data["description"],
        seed=data["seed"],
        steps=tuple(_step(s) for s in data["steps"]),
        cards=_cards(data.get("cards")),
        batching=_batching(data.get("batching", {})),
        faults=tuple(_fault(f) for f in data.get("faults", ())),
        expect=_expect(data.get("expect", {})),
        issuer_id=data.get("issuerId", DEFAULT_ISSUER),
        receiver=dict(data.get("receiver", {})),
        source=source,
    )


def _step(raw: Mapping[str, Any]) -> Step:
    return Step(
        raw["status"],
        parse_duration(raw.get("after", 0)),
        raw.get("unknown", False),
        raw.get("updates", 0),
        parse_duration(raw.get("every", DEFAULT_EVERY.total_seconds())),
        raw.get("details"),
        raw.get("shipment"),
        raw.get("operation"),
    )


def _cards(raw: Any) -> Cards:
    if raw is None:
        return Cards()
    if isinstance(raw, str):
        return Cards(ids=(raw,))
    if isinstance(raw, list):
        return Cards(ids=tuple(raw))
    return Cards(
        ids=tuple(raw.get("ids", ())),
        count=raw.get("count", 1),
        spacing=parse_duration(raw.get("spacing", 0)),
        correlated=raw.get("correlated", False),
        per_file=raw.get("per_file", 1),
    )


def _batching(raw: Mapping[str, Any]) -> Batching:
    return Batching(raw.get("max", 10), raw.get("mix", True), parse_duration(raw.get("window", 0)))


def _fault(raw: Mapping[str, Any]) -> Fault:
    params = {
        k: parse_duration(v) if k in DURATIONS["faults"] else v
        for k, v in raw.items()
        if k not in ("kind", "label")
    }
    return Fault(raw["kind"], params, raw.get("label"))


def _expect(raw: Mapping[str, Any]) -> Expectations:
    responses = raw.get("responses", "2xx")
    return Expectations(
        raw.get("all_delivered", True),
        tuple([responses] if isinstance(responses, str) else responses),
        raw.get("end_state", True),
    )


def load_scenario_file(path: str | FilePath) -> Scenario:
    """Read and check a scenario file (the file name is the error's source)."""
    return load_scenario_text(FilePath(path).read_text(encoding="utf-8"), str(path))


def _bundled_files() -> dict[str, Any]:
    return {
        entry.name.removesuffix(".yaml"): entry
        for entry in resources.files("d1sim.scenarios").iterdir()
        if entry.name.endswith(".yaml")
    }


def load_bundled(name: str) -> Scenario:
    """A scenario shipped in the ``scenarios`` package, by name (e.g. ``happy-path``).

    Raises:
        KeyError: no bundled scenario has that name (the message suggests a close one).
    """
    files = _bundled_files()
    if name not in files:
        raise KeyError(
            f"no bundled scenario '{name}'{did_you_mean(name, files)}; "
            f"known: {', '.join(sorted(files))}"
        )
    return load_scenario_text(files[name].read_text(encoding="utf-8"), f"scenarios/{name}.yaml")


def bundled_scenarios() -> dict[str, str]:
    """Every bundled scenario's name and one-line description, sorted by name."""
    return {name: load_bundled(name).description for name in sorted(_bundled_files())}
