"""Plans for a replay's writer process in tests: module-level, so they travel by pickle."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

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


def many_cards_replay(folder: Path, url: str) -> tuple[Path, Path, list[str]]:
    """A scenario of 30,000 cards (planning takes a second or more), its outbox, and the
    ``d1sim replay`` command that sends it to ``url``."""
    db, scenario = folder / "o.db", folder / "many.yaml"
    scenario.write_text("name: many\ndescription: many cards\nseed: 3\ncards:\n  count: 30000\n"
                        "steps:\n  - status: CARD_PROD_REQUESTED\n  - status: DATA_PREPARED\n    after: 1h\n")
    command = [sys.executable, "-m", "d1sim", "replay", str(scenario), "--target", url, "--db", str(db),
               "--no-progress", "--concurrency", "2"]
    return db, scenario, command
