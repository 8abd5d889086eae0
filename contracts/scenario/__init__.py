"""Scenarios: a YAML description of cards, faults and expectations, expanded into a timeline.

Data flows ``source`` (read YAML with line numbers) -> ``schema`` (shape) -> ``checks`` (meaning:
lifecycle, faults, durations) -> ``loading`` (the ``Scenario`` value) -> ``expansion`` (planned
deliveries and card expectations on a ``timeline``). ``faults`` is the table of fault kinds,
``durations`` parses ``30s``/``2h``.

>>> from d1sim.contracts.scenario import expand_scenario, load_bundled, summarize
>>> summarize(expand_scenario(load_bundled("happy-path"))).cards
1
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from d1sim.contracts.scenario.expansion import expand_scenario, summarize
    from d1sim.contracts.scenario.loading import Scenario, bundled_scenarios, load_bundled, load_scenario_text

# Loaded on first use: a sender process needs only ``timeline`` (and no YAML, Faker or schemas).
_HOMES = {"expand_scenario": "expansion", "summarize": "expansion", "Scenario": "loading",
          "bundled_scenarios": "loading", "load_bundled": "loading", "load_scenario_text": "loading"}

__all__ = ["Scenario", "bundled_scenarios", "expand_scenario", "load_bundled", "load_scenario_text", "summarize"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
