"""The lifecycle diagram the card page draws, built from the model (no state is named here).

The main path is one row of boxes; every other state sits below with the states it can be
reached from. A card's path marks the boxes it went through, in the order first reached.

Example::

    >>> from d1sim.contracts.lifecycle import load_lifecycle
    >>> d = lifecycle_diagram(load_lifecycle(), ["CARD_PROD_REQUESTED", "DATA_EXCEPTION"])
    >>> [b.name for b in d.main][:2], [b.name for b in d.others if b.visited]
    (['CARD_PROD_REQUESTED', 'DATA_PREPARED'], ['DATA_EXCEPTION'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from d1sim.contracts.lifecycle import Lifecycle


@dataclass(frozen=True, slots=True)
class Box:
    """One state as drawn: its meaning, kind (path, success, failure), and the card's visit."""

    name: str
    meaning: str
    kind: str
    visited: bool
    step: int | None  # 1-based order in which the card first reached it
    reached_from: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Diagram:
    """The main path's boxes, the other states' boxes, and statuses the model does not know."""

    main: tuple[Box, ...]
    others: tuple[Box, ...]
    unknown: tuple[str, ...]


def lifecycle_diagram(model: Lifecycle, path: Sequence[str]) -> Diagram:
    """The diagram of ``model`` with ``path`` (statuses in the order the card reached them)."""
    steps: dict[str, int] = {}
    for status in path:
        steps.setdefault(status, len(steps) + 1)
    sources = {name: tuple(sorted((a for a, nexts in model.successors.items() if name in nexts and a != name),
                                  key=model.rank)) for name in model.states}

    def box(name: str) -> Box:
        state = model.states[name]
        kind = "failure" if state.terminal and state.operation_status == "FAILED" else (
            "success" if state.terminal else "path")
        return Box(name, state.meaning, kind, name in steps, steps.get(name), sources[name])

    main = tuple(box(name) for name in model.main_path)
    others = tuple(box(name) for name in sorted(model.states, key=model.rank) if name not in model.main_path)
    unknown = tuple(s for s in steps if not model.is_known(s))
    return Diagram(main, others, unknown)
