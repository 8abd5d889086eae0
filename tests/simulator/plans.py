"""Plans for a replay's writer process in tests: module-level, so they travel by pickle."""

from __future__ import annotations

import time
from collections.abc import Iterator

from d1sim.contracts.scenario.source import ScenarioError
from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.replay.writer import HAND_OVER


def planned(n: int, *, pause: float = 0.0, fail_at: int | None = None, keys: int | None = None) -> Iterator[Delivery]:
    """``n`` small deliveries (seq 0 on), one key each unless ``keys`` groups them; a ``pause``
    every HAND_OVER of them, a ScenarioError at ``fail_at``."""
    for i in range(n):
        if fail_at is not None and i == fail_at:
            raise ScenarioError("too many", source="scenario.yaml", line=3, column=1, path="cards.count")
        if pause and i and i % HAND_OVER == 0:
            time.sleep(pause)
        key = f"c{i % keys if keys else i}"
        yield Delivery(i, float(i), b"{}", (f"c{i}",), ("X",), f"corr-{i}", "s", key)
