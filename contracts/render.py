"""Render the lifecycle model as text: a table, a Mermaid state diagram, or its JSON document.

Everything comes from the loaded model, so a new state or transition in
``schemas/produce-lifecycle.json`` shows up in the docs without touching this module.

Example::

    >>> from d1sim.contracts.lifecycle import load_lifecycle
    >>> from d1sim.contracts.lifecycle.render import render_mermaid
    >>> render_mermaid(load_lifecycle()).splitlines()[:2]
    ['stateDiagram-v2', '    [*] --> CARD_PROD_REQUESTED']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from d1sim.contracts.lifecycle import Lifecycle, State

TABLE_COLUMNS = (
    "state",
    "operation status",
    "rank",
    "terminal",
    "next states",
    "confidence",
    "meaning",
)

# How each rule of the model reads in prose; a rule without an entry is shown as name: value.
RULE_TEXTS = {
    "forwardSkip": "a forward skip along the main path is reported as: {}",
    "endTimeWhen": "endTime is present exactly when the operation status is {}",
    "errorWhen": "errorCode and error appear only when the operation status is {}",
    "shipmentOrderBy": "repeated updates of a repeatable state are ordered by details.shipment.{}",
    "unknownStatus": "an unknown details.status is {} (accepted, never moves the state)",
}

# Mermaid classes by operation status: failures stand out, success is marked.
STATUS_CLASSES = {
    "FAILED": ("failure", "fill:#fde2e1,stroke:#c0392b,color:#7b241c"),
    "SUCCESSFUL": ("success", "fill:#e3f4e1,stroke:#2e7d32,color:#1b5e20"),
}


def render_json(model: Lifecycle) -> str:
    """The model's own JSON document, pretty-printed (the interchange format)."""
    return json.dumps(model.document, indent=2, ensure_ascii=False)


def render_table(model: Lifecycle) -> str:
    """A plain-text table of the states, followed by the path and the rules."""
    rows = [_state_row(model, state) for state in _ordered(model)]
    return "\n".join([*_aligned(TABLE_COLUMNS, rows), "", *_rule_lines(model)])


def _ordered(model: Lifecycle) -> list[State]:
    return sorted(model.states.values(), key=lambda state: (state.rank, state.name))


def _state_row(model: Lifecycle, state: State) -> tuple[str, ...]:
    return (
        state.name,
        state.operation_status,
        str(state.rank),
        "yes" if state.terminal else "no",
        _next_states(model, state),
        state.confidence,
        state.meaning,
    )


def _next_states(model: Lifecycle, state: State) -> str:
    following = sorted(model.successors[state.name], key=lambda name: (model.rank(name), name))
    names = [f"{name} (repeat)" if name == state.name else name for name in following]
    return ", ".join(names) or "-"


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    rule = ["-" * width for width in widths]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, rule, *rows]
    ]


def _rule_lines(model: Lifecycle) -> list[str]:
    lines = [
        "Rules:",
        f"  initial state: {model.initial}",
        f"  main path: {' -> '.join(model.main_path)}",
    ]
    for name, value in model.rules.items():
        text = RULE_TEXTS.get(name, name + ": {}")
        lines.append("  " + text.format(_shown(value)))
    return lines


def _shown(value: Any) -> str:
    return " or ".join(value) if isinstance(value, list) else str(value)


def render_mermaid(model: Lifecycle) -> str:
    """A Mermaid ``stateDiagram-v2``: every state and transition, terminals to ``[*]``."""
    lines = ["stateDiagram-v2", f"    [*] --> {model.initial}"]
    for state in _ordered(model):
        lines.append(f"    {state.name} : {_mermaid_text(state.meaning)}")
    for state in _ordered(model):
        lines += [_transition(model, state, target) for target in _sorted_targets(model, state)]
    lines += [f"    {state.name} --> [*]" for state in _ordered(model) if state.terminal]
    lines += _class_lines(model)
    return "\n".join(lines)


def _sorted_targets(model: Lifecycle, state: State) -> list[str]:
    return sorted(model.successors[state.name], key=lambda name: (model.rank(name), name))


def _transition(model: Lifecycle, state: State, target: str) -> str:
    if target == state.name:
        order_by = model.rules.get("shipmentOrderBy", "time")
        return f"    {state.name} --> {target} : shipment update (ordered by {order_by})"
    return f"    {state.name} --> {target}"


def _class_lines(model: Lifecycle) -> list[str]:
    lines = []
    for status, (name, style) in STATUS_CLASSES.items():
        members = [s.name for s in _ordered(model) if s.operation_status == status]
        if members:
            lines += [f"    classDef {name} {style}", f"    class {','.join(members)} {name}"]
    return lines


def _mermaid_text(text: str) -> str:
    # Mermaid ends a statement at ';' and splits labels at ':'; neither may appear in a label.
    return text.replace(";", ",").replace(":", " -").rstrip(".")
