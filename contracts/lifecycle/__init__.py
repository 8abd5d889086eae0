"""The card-production lifecycle: the state model, legal sequences, convergence and pictures.

Modules: ``model`` (the table loaded from ``schemas/produce-lifecycle.json``), ``sequence``
(which arrival orders are legal), ``convergence`` (the state a receiver should end in whatever
the arrival order), ``render`` (Mermaid, table and JSON views).

>>> from d1sim.contracts.lifecycle import load_lifecycle
>>> load_lifecycle().may_follow("CARD_PROD_DONE", "CARD_SHIPPED")
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from d1sim.contracts.lifecycle.convergence import converge
    from d1sim.contracts.lifecycle.model import Lifecycle, State, load_lifecycle
    from d1sim.contracts.lifecycle.render import render_mermaid, render_table
    from d1sim.contracts.lifecycle.sequence import SequenceChecker, check_sequence

# Loaded on first use: importing one module of the package does not load the others.
_HOMES = {"converge": "convergence", "Lifecycle": "model", "State": "model", "load_lifecycle": "model",
          "render_mermaid": "render", "render_table": "render", "SequenceChecker": "sequence",
          "check_sequence": "sequence"}

__all__ = [
    "Lifecycle",
    "SequenceChecker",
    "State",
    "check_sequence",
    "converge",
    "load_lifecycle",
    "render_mermaid",
    "render_table",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
