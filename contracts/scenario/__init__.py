"""Scenarios: a YAML description of cards, faults and expectations, expanded into a timeline.

Data flows ``source`` (read YAML with line numbers) -> ``schema`` (shape) -> ``checks`` (meaning:
lifecycle, faults, durations) -> ``loading`` (the ``Scenario`` value) -> ``expansion`` (planned
deliveries and card expectations on a ``timeline``). ``faults`` is the table of fault kinds,
``durations`` parses ``30s``/``2h``.

>>> from d1sim.contracts.scenario import expand_scenario, load_bundled, summarize
>>> summarize(expand_scenario(load_bundled("happy-path"))).cards
1
"""

from d1sim.contracts.scenario.expansion import expand_scenario, summarize
from d1sim.contracts.scenario.loading import Scenario, bundled_scenarios, load_bundled, load_scenario_text

__all__ = ["Scenario", "bundled_scenarios", "expand_scenario", "load_bundled", "load_scenario_text", "summarize"]
