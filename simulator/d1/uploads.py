"""A budget for the scenario runs the admin API starts: how many at once, how big, how long.

Loading and expanding a scenario is CPU work that grows with what the scenario asks for. Nine
small uploads asking for millions of notifications used to take every request thread, and the
server stopped answering. Now an upload is refused past :data:`UPLOAD_LIMITS` (422) before it
is expanded, at most ``slots`` runs are planned at a time (the next one gets 429 with
``Retry-After`` at once, holding no thread), and a plan that takes longer than ``seconds`` is
abandoned (422) before anything is stored.

Example::

    >>> budget = PlanningBudget(slots=1, seconds=5.0)
    >>> with budget.slot():
    ...     len(budget.collect(iter(range(3))))
    3
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from d1sim.contracts.scenario.limits import ScenarioLimits

T = TypeVar("T")

# An uploaded scenario is a test of a receiver, not a load test: bulk runs go through replay.
UPLOAD_LIMITS = ScenarioLimits(
    max_bytes=64 * 1024, max_depth=16, max_nodes=20_000, max_per_card=1_000,
    max_notifications=50_000,
)
CHECK_EVERY = 64  # deliveries planned between two looks at the clock


class BudgetFull(Exception):
    """Every planning slot is taken; try again after ``retry_after`` seconds."""

    def __init__(self, slots: int, retry_after: int) -> None:
        super().__init__(f"{slots} scenario run(s) are being planned; try again shortly")
        self.retry_after = retry_after


class OverTime(Exception):
    """Planning took longer than the budget allows."""


class PlanningBudget:
    """At most ``slots`` plans at a time, each for at most ``seconds``."""

    def __init__(self, slots: int = 2, seconds: float = 10.0) -> None:
        self.slots, self.seconds = slots, seconds
        self._free = threading.BoundedSemaphore(slots)
        self._local = threading.local()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a planning slot for the block; :class:`BudgetFull` at once when there is none."""
        if not self._free.acquire(blocking=False):
            raise BudgetFull(self.slots, max(1, round(self.seconds / 2)))
        self._local.deadline = time.monotonic() + self.seconds
        try:
            yield
        finally:
            self._free.release()

    def collect(self, items: Iterable[T]) -> list[T]:
        """Every item, or :class:`OverTime` when the slot's deadline passes first."""
        deadline = getattr(self._local, "deadline", time.monotonic() + self.seconds)
        collected: list[T] = []
        for item in items:
            collected.append(item)
            if len(collected) % CHECK_EVERY == 0 and time.monotonic() > deadline:
                raise OverTime(f"planning the run took more than {self.seconds:g} s "
                               f"({len(collected):,} deliveries so far); make the scenario smaller")
        return collected
