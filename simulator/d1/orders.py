"""From a production order to a lifecycle: pick the scenario, make it a one-card scenario, plan it.

An order is accepted (and stored) first and planned just after by the
:class:`~d1sim.simulator.d1.planner.Planner`: the 202 never waits for the expansion.

The one-card scenario is the chosen bundled scenario with ``cards = [cardId]`` and, on every
step, the order's ``operationId`` (so the 202 can name it before planning) and its
``issuerRequestId`` (correlation). Everything else -- statuses, delays, faults -- is the
scenario's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from d1sim.contracts.lifecycle import Lifecycle, load_lifecycle
from d1sim.contracts.lifecycle.convergence import order_key
from d1sim.contracts.payloads.factory import format_time
from d1sim.contracts.payloads.inbound import VALUE, InboundError, scenario_from_request_id
from d1sim.contracts.scenario.expansion import planned_deliveries
from d1sim.contracts.scenario.loading import Batching, Cards, Scenario, Step
from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.d1.config import bundled, bundled_names
from d1sim.simulator.d1.store import OrderRecord
from d1sim.simulator.delivery.outbox import Outbox

SCENARIO_HEADER = "X-D1Sim-Scenario"
CANCELED = "CARD_PROD_CANCELED"
CANCEL_REASON = "Cancelled by the issuer"
# Fields of the last operation's details a cancellation repeats (the rest describe production).
KEPT_DETAILS = ("dueDate", "productionSite", "inputFileName", "issuerRequestId", "consumerId")


def choose_scenario(header: str | None, request_id: str | None, default: str) -> str:
    """The scenario of an order: the header, else an ``SCN-<name>-`` request id, else ``default``.

    Raises:
        InboundError-carrying ValueError: see :class:`ScenarioChoiceError`.
    """
    names = bundled_names()
    if header:
        if header not in names:
            raise ScenarioChoiceError(
                InboundError(
                    VALUE,
                    SCENARIO_HEADER,
                    f"unknown scenario {header!r}; known: {', '.join(names)}",
                )
            )
        return header
    try:
        return scenario_from_request_id(request_id, names) or default
    except ValueError as exc:
        raise ScenarioChoiceError(InboundError(VALUE, "issuerRequestId", str(exc))) from None


class ScenarioChoiceError(ValueError):
    """An order names a scenario that does not exist; ``error`` is the 400 to answer."""

    def __init__(self, error: InboundError) -> None:
        super().__init__(error.message)
        self.error = error


def order_scenario(base: Scenario, order: OrderRecord, max_operations: int) -> Scenario:
    """``base`` for the order's card alone, stamped with its operationId and issuerRequestId."""
    stamp: dict[str, Any] = {"issuerRequestId": order.request_id} if order.request_id else {}
    steps = tuple(_stamped(step, stamp, order.operation_id) for step in base.steps)
    batching = Batching(min(base.batching.max, max_operations), base.batching.mix, base.batching.window)
    return replace(
        base,
        steps=steps,
        cards=Cards(ids=(order.card_id,)),
        batching=batching,
        issuer_id=order.issuer_id,
    )


def _stamped(step: Step, stamp: Mapping[str, Any], operation_id: str) -> Step:
    # The scenario's own overrides win (e.g. a null that removes a field), except the id.
    operation = {**stamp, **(step.operation or {}), "operationId": operation_id}
    details = {**stamp, **(step.details or {})}
    return replace(step, operation=operation, details=details or None)


def start_time(virtual: float) -> datetime:
    """A virtual clock reading as the datetime payload times follow."""
    return datetime.fromtimestamp(virtual, UTC)


def cancel_operation(last: Mapping[str, Any], at: datetime, model: Lifecycle | None = None) -> dict[str, Any]:
    """The CARD_PROD_CANCELED operation that ends the order ``last`` belongs to, at ``at``."""
    model = model or load_lifecycle()
    dropped = ("endTime", "errorCode", "error", "details")
    op = {k: v for k, v in last.items() if k not in dropped}
    op["status"] = model.operation_status(CANCELED)
    if model.end_time_expected(op["status"]):
        op["endTime"] = format_time(at)
    raw = last.get("details")
    details: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    kept = {k: details[k] for k in KEPT_DETAILS if k in details}
    op["details"] = {"status": CANCELED, **kept, "reason": CANCEL_REASON}
    return op


def held_operation(
    operations: Iterable[Mapping[str, Any]], card_id: str, model: Lifecycle | None = None
) -> Mapping[str, Any] | None:
    """The operation a converged receiver holds for ``card_id`` (the convergence rule)."""
    model = model or load_lifecycle()
    mine = [op for op in operations if _counts(op, card_id, model)]
    return max(mine, key=lambda op: order_key(op, model)) if mine else None


def _counts(op: Mapping[str, Any], card_id: str, model: Lifecycle) -> bool:
    details = op.get("details")
    return (
        op.get("cardId") == card_id
        and op.get("operation") == model.operation
        and isinstance(details, Mapping)
        and isinstance(details.get("status"), str)
        and model.is_known(details["status"])
    )


def expand_order(job: tuple[OrderRecord, int]) -> tuple[str, list[Delivery]]:
    """The scenario name and deliveries of ``(order, max operations per POST)``.

    A pure function of its argument, so it may run in a planning process.
    """
    order, max_operations = job
    scenario = order_scenario(bundled(order.scenario), order, max_operations)
    return scenario.name, list(planned_deliveries(scenario, seed=order.seed, start=start_time(order.start)))


def store_run(
    outbox: Outbox, name: str, target: str, options: Mapping[str, Any], deliveries: Iterable[Delivery]
) -> str:
    """Store a planned run in the outbox; return its id."""
    run_id = outbox.create_run(name, target, {"server": "d1sim serve", **options})
    outbox.add_deliveries(run_id, deliveries)
    return run_id


def plan_run(
    outbox: Outbox,
    scenario: Scenario,
    seed: int,
    start: float,
    target: str,
    options: Mapping[str, Any],
) -> str:
    """Store a run of ``scenario`` from virtual time ``start`` in the outbox; return its id."""
    deliveries = planned_deliveries(scenario, seed=seed, start=start_time(start))
    return store_run(outbox, scenario.name, target, {**options, "seed": seed}, deliveries)
