"""The PRODUCE lifecycle, loaded from ``schemas/produce-lifecycle.json``; nothing is hard-coded.

Example::

    >>> from d1sim.contracts.lifecycle import load_lifecycle
    >>> model = load_lifecycle()
    >>> model.operation_status("CARD_SHIPPED"), model.may_follow("CARD_PROD_DONE", "CARD_SHIPPED")
    ('SUCCESSFUL', True)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema

from d1sim.contracts.notification.documents import load_document


class LifecycleModelError(ValueError):
    """The lifecycle document is not a usable model (names the offending entry)."""


@dataclass(frozen=True, slots=True)
class State:
    """One known ``details.status`` value."""

    name: str
    meaning: str
    operation_status: str
    rank: int
    terminal: bool
    repeatable: bool = False
    confidence: str = "decided"


class Lifecycle:
    """Queries over the transition table: status of a state, may B follow A, rank, paths."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.operation: str = document["operation"]
        self.initial: str = document["initial"]
        self.states: dict[str, State] = {
            s["name"]: State(
                name=s["name"],
                meaning=s["meaning"],
                operation_status=s["operationStatus"],
                rank=s["rank"],
                terminal=s["terminal"],
                repeatable=s.get("repeatable", False),
                confidence=s.get("confidence", "decided"),
            )
            for s in document["states"]
        }
        self.main_path: tuple[str, ...] = tuple(document["mainPath"])
        self.successors: dict[str, frozenset[str]] = {name: frozenset() for name in self.states}
        for row in document["transitions"]:
            self.successors[row["from"]] = frozenset(row["to"])
        self.rules: Mapping[str, Any] = document["rules"]
        self._reach = {name: self._reachable_from(name) for name in self.states}

    def _reachable_from(self, start: str) -> frozenset[str]:
        seen: set[str] = set()
        todo = list(self.successors[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.successors[name])
        return frozenset(seen)

    def is_known(self, status: str) -> bool:
        return status in self.states

    def operation_status(self, status: str) -> str:
        """The operation status (PENDING/SUCCESSFUL/FAILED) that goes with a known status."""
        return self.states[status].operation_status

    def rank(self, status: str) -> int:
        return self.states[status].rank

    def is_terminal(self, status: str) -> bool:
        return self.states[status].terminal

    def may_follow(self, before: str, after: str) -> bool:
        """True when ``after`` is a direct successor of ``before`` in the model."""
        return after in self.successors.get(before, ())

    def reachable(self, before: str, after: str) -> bool:
        """True when ``after`` can come some time after ``before`` in one lifecycle."""
        return after in self._reach.get(before, ())

    def skipped(self, before: str, after: str) -> list[str]:
        """Main-path states passed over when ``after`` directly follows ``before``."""
        path = self.main_path
        if before in path and after in path:
            return list(path[path.index(before) + 1 : path.index(after)])
        return []

    def paths(self) -> Iterator[tuple[str, ...]]:
        """Every simple path from the initial state to a terminal state (repeats not unrolled)."""
        stack: list[tuple[str, ...]] = [(self.initial,)]
        while stack:
            path = stack.pop()
            last = path[-1]
            if self.states[last].terminal:
                yield path
            stack.extend(path + (nxt,) for nxt in sorted(self.successors[last]) if nxt not in path)

    def end_time_expected(self, operation_status: str) -> bool:
        return operation_status in self.rules["endTimeWhen"]

    def error_allowed(self, operation_status: str) -> bool:
        return operation_status in self.rules["errorWhen"]


@cache
def load_lifecycle(name: str = "produce-lifecycle.json") -> Lifecycle:
    """Load and check a lifecycle document shipped in ``schemas`` (cached).

    Raises:
        LifecycleModelError: the document breaks its schema or names an undefined state.
    """
    return lifecycle_from_document(load_document(name))


def lifecycle_from_document(document: Mapping[str, Any]) -> Lifecycle:
    """Build a :class:`Lifecycle` from a parsed document, checking it first."""
    try:
        jsonschema.Draft202012Validator(load_document("lifecycle.schema.json")).validate(document)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise LifecycleModelError(f"lifecycle model at /{where}: {exc.message}") from None
    names = {s["name"] for s in document["states"]}
    referenced = [document["initial"], *document["mainPath"]]
    for row in document["transitions"]:
        referenced += [row["from"], *row["to"]]
    unknown = sorted(set(referenced) - names)
    if unknown:
        raise LifecycleModelError(f"lifecycle model names undefined states: {', '.join(unknown)}")
    return Lifecycle(document)
