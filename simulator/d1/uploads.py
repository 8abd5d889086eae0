"""Planning one scenario run the admin API was asked for, within a budget of size and time.

Loading and expanding a scenario is CPU work that grows with what the scenario asks for: a
300-byte upload can ask for 50,000 notifications, each with a thousand extra fields. So an upload
is refused past :data:`UPLOAD_LIMITS` (422) before it is expanded, and the expansion stops (422)
once it has taken ``seconds`` or made more than :data:`MAX_BODY_BYTES` of notification bodies.
Nothing here runs on a request thread or stores anything: :mod:`d1sim.simulator.d1.jobs` runs
:func:`plan_run_request` in a planning process it can kill, and stores what comes back whole.
A failure is a value (:class:`Refusal`), not an exception: it crosses a process boundary.

Example::

    >>> planned = plan_run_request(RunRequest("ISSUER0001", 10, start=0.0, scenario="happy-path"))
    >>> planned.scenario, len(planned.deliveries) > 0
    ('happy-path', True)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

from d1sim.contracts.scenario.expansion import planned_deliveries
from d1sim.contracts.scenario.limits import ScenarioLimits, ScenarioTooLarge
from d1sim.contracts.scenario.loading import Scenario, load_scenario_text
from d1sim.contracts.scenario.source import ScenarioError
from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.d1.config import bundled
from d1sim.simulator.d1.orders import start_time

# An uploaded scenario is a test of a receiver, not a load test: bulk runs go through replay.
UPLOAD_LIMITS = ScenarioLimits(
    max_bytes=64 * 1024, max_depth=16, max_nodes=20_000, max_per_card=1_000,
    max_notifications=50_000,
)
MAX_SCENARIO_CARDS = 10_000  # an admin-started run's lanes are held in memory while it runs
MAX_BODY_BYTES = 64 * 1024 * 1024  # of notification bodies in one run (50,000 plain ones: ~30 MB)
CHECK_EVERY = 64  # deliveries planned between two looks at the clock


@dataclass(frozen=True)
class RunRequest:
    """A run to plan: an uploaded ``yaml`` scenario, else the bundled ``scenario``, for an issuer."""

    issuer_id: str
    max_operations: int  # the issuer's: a POST carries at most this many operations
    start: float  # the issuer's virtual time when the run was asked for
    scenario: str = "happy-path"
    yaml: str | None = None
    seed: int | None = None  # None: the scenario's own
    seconds: float = 10.0


@dataclass(frozen=True)
class PlannedRun:
    """A planned run, not stored yet."""

    scenario: str
    seed: int
    deliveries: list[Delivery]


@dataclass(frozen=True)
class Refusal:
    """Why a run was not planned: the problem the admin API shows (``status`` as an HTTP one)."""

    status: int
    title: str
    detail: str


class OverBudget(Exception):
    """The expansion took longer, or made more, than the budget allows."""


def plan_run_request(request: RunRequest) -> PlannedRun | Refusal:
    """Load, check and expand ``request``'s scenario within its budget."""
    try:
        scenario = _scenario(request)
        if scenario.cards.total > MAX_SCENARIO_CARDS:
            return Refusal(422, "Scenario too large", f"at most {MAX_SCENARIO_CARDS:,} cards")
        seed = scenario.seed if request.seed is None else request.seed
        batching = replace(scenario.batching, max=min(scenario.batching.max, request.max_operations))
        scenario = replace(scenario, issuer_id=request.issuer_id, batching=batching)
        expansion = planned_deliveries(scenario, seed=seed, start=start_time(request.start))
        return PlannedRun(scenario.name, seed, collect(expansion, request.seconds))
    except ScenarioTooLarge as exc:
        return Refusal(422, "Scenario too large", str(exc))
    except ScenarioError as exc:
        return Refusal(400, "Invalid scenario", str(exc))
    except OverBudget as exc:
        return Refusal(422, "Scenario too large", str(exc))
    except MemoryError:
        return Refusal(422, "Scenario too large", "planning the run needs more memory than a "
                       "planning process may use; make the scenario smaller")


def _scenario(request: RunRequest) -> Scenario:
    if request.yaml is not None:
        return load_scenario_text(request.yaml, "uploaded scenario", UPLOAD_LIMITS)
    return bundled(request.scenario)


def collect(deliveries: Iterable[Delivery], seconds: float, max_bytes: int = MAX_BODY_BYTES) -> list[Delivery]:
    """Every delivery, or :class:`OverBudget` once ``seconds`` or ``max_bytes`` of bodies are spent.

    The clock is read between deliveries: an expansion that makes none for a long time is
    stopped from outside (the planning process is killed).
    """
    deadline = time.monotonic() + seconds
    collected: list[Delivery] = []
    size = 0
    for item in deliveries:
        collected.append(item)
        size += len(item.body)
        if size > max_bytes:
            raise OverBudget(f"the run's notifications would take more than {max_bytes // 2**20} MiB "
                             f"({len(collected):,} deliveries so far); make the scenario smaller")
        if len(collected) % CHECK_EVERY == 0 and time.monotonic() > deadline:
            raise OverBudget(f"planning the run took more than {seconds:g} s "
                             f"({len(collected):,} deliveries so far); make the scenario smaller")
    return collected
