"""Which ordering lanes of a scenario one Locust worker sends, handed out to its users one at a time.

A lane is the run of consecutive deliveries sharing a ``key`` (one card, or one group of cards
sharing bodies); its deliveries must arrive in ``seq`` order, so a lane is only ever sent by one
user, start to end. Worker ``index`` of ``count`` takes lanes ``index``, ``index + count``, ...:
every worker expands the same deterministic scenario, so together they send each lane exactly
once without talking to each other.

Example::

    >>> from d1sim.contracts.scenario.loading import load_bundled
    >>> plan = LanePlan(load_bundled("bulk-batch"), index=0, count=2)
    >>> lane = plan.next_lane()
    >>> len({d.key for d in lane}), [d.seq for d in lane] == sorted(d.seq for d in lane)
    (1, True)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from d1sim.contracts.scenario.expansion import planned_deliveries
from d1sim.contracts.scenario.loading import Scenario
from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.errors import UsageError


class LanePlan:
    """This worker's share of a scenario's lanes; ``next_lane`` hands them out, then None."""

    def __init__(self, scenario: Scenario, *, index: int = 0, count: int = 1, seed: int | None = None) -> None:
        if count < 1 or not 0 <= index < count:
            raise UsageError(f"worker index {index} is outside 0..{count - 1}: start the master with "
                             "--expect-workers set to the number of workers")
        lanes = itertools.groupby(planned_deliveries(scenario, seed=seed), key=lambda d: d.key)
        self._lanes: Iterator[tuple[str, Iterator[Delivery]]] = itertools.islice(lanes, index, None, count)
        self.in_flight = 0
        self.exhausted = False

    def next_lane(self) -> list[Delivery] | None:
        """The next lane to send, in seq order; None once every lane was handed out."""
        found = next(self._lanes, None)
        if found is None:
            self.exhausted = True
            return None
        self.in_flight += 1
        return list(found[1])

    def lane_done(self) -> bool:
        """Record that a user finished its lane; True when it was the last one of this worker."""
        self.in_flight -= 1
        return self.exhausted and self.in_flight == 0
