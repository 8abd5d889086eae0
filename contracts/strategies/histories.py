"""One card's legal lifecycle in true order, and the orders a receiver may see it arrive in.

Delivery is at least once and unordered, so a receiver must converge on the truly last state
from any permutation of a lifecycle, duplicates included.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from d1sim.contracts.lifecycle.model import Lifecycle, load_lifecycle
from d1sim.contracts.strategies.payloads import Operation, argument_problem, draw_operation
from d1sim.contracts.strategies.values import draw_later, draw_order, failing

Path = tuple[str, ...]


def _path_problem(model: Lifecycle, path: object) -> str | None:
    if path is None:
        return None
    if isinstance(path, str) or not isinstance(path, Sequence) or not path:
        return f"lifecycles(path={path!r}): give a non-empty sequence of status names"
    unknown = [s for s in path if not (isinstance(s, str) and model.is_known(s))]
    if unknown:
        return (
            f"lifecycles(path=...): {unknown[0]!r} is not a status of the {model.operation} model"
        )
    for before, after in zip(path, path[1:], strict=False):
        if not model.may_follow(before, after):
            return f"lifecycles(path=...): {after} cannot directly follow {before} in the model"
    return None


def lifecycles(
    path: Sequence[str] | None = None, *, max_updates: int = 3, card_id: str | None = None
) -> SearchStrategy[list[Operation]]:
    """The operations of one order of one card, along a legal path, in true order.

    Args:
        path: the statuses to report, each a direct successor of the one before; None draws a
            path of the model (``Lifecycle.paths()``) cut after any of its states.
        max_updates: a repeatable last state (CARD_SHIPPED) gets 0..max_updates further
            shipment updates, with strictly increasing ``lastUpdatedAt``.
        card_id: a fixed card id instead of a drawn one.
    Returns:
        A strategy of operation lists sharing operationId, cardId and startTime, with strictly
        increasing report times. A bad argument gives a strategy that fails when drawn.
    Example::

        @given(lifecycles(["CARD_PROD_REQUESTED", "DATA_EXCEPTION"]))
        def test_rejects(ops): assert [op["status"] for op in ops] == ["PENDING", "FAILED"]
    """
    model = load_lifecycle()
    problem = _path_problem(model, path) or argument_problem(
        "lifecycles", model, None, card_id, None
    )
    if not isinstance(max_updates, int) or max_updates < 0:
        problem = problem or f"lifecycles(max_updates={max_updates!r}): a count, 0 or more"
    if problem:
        return failing(problem)
    paths = st.just(tuple(path)) if path is not None else _path_prefixes(model)
    return _drawn_lifecycles(model, paths, max_updates, card_id)


def _path_prefixes(model: Lifecycle) -> SearchStrategy[Path]:
    # Shortest paths first, so a failing lifecycle shrinks to the shortest story that fails.
    paths = sorted(model.paths(), key=lambda p: (len(p), p))
    return st.sampled_from(paths).flatmap(lambda p: st.integers(1, len(p)).map(lambda n: p[:n]))


@st.composite
def _drawn_lifecycles(
    draw: DrawFn,
    model: Lifecycle,
    paths: SearchStrategy[Path],
    max_updates: int,
    card_id: str | None,
) -> list[Operation]:
    statuses = list(draw(paths))
    if model.states[statuses[-1]].repeatable:
        statuses += [statuses[-1]] * draw(st.integers(0, max_updates))
    first_step = int(draw(st.booleans()))  # the first CARD_SHIPPED may already carry tracking
    order = draw_order(draw, card_id=card_id)  # the shape first, then the values
    ops: list[Operation] = []
    at, ended, step = order.start, None, 0
    for i, status in enumerate(statuses):
        if i:
            at = draw_later(draw, at, min_ms=1)
        step = step + 1 if i and status == statuses[i - 1] else first_step
        known = any(model.states[s].carries_production_facts(False) for s in statuses[:i])
        ops.append(
            draw_operation(
                draw, model, order, status, at, ended=ended, step=step, facts_known=known
            )
        )
        ended = ended or _end(model, status, at)
    return ops


def _end(model: Lifecycle, status: str, at: datetime) -> datetime | None:
    return at if model.end_time_expected(model.operation_status(status)) else None


def arrival_orders(
    lifecycle: Sequence[Operation], *, duplicates: bool = True
) -> SearchStrategy[list[Operation]]:
    """Any order the operations of ``lifecycle`` may arrive in, optionally with redeliveries.

    Args:
        lifecycle: operations in true order (e.g. drawn from :func:`lifecycles`).
        duplicates: also deliver up to ``len(lifecycle)`` of them a second time.
    Returns:
        A strategy of lists of deep copies (a receiver may mutate what it gets); shrinks to
        the true order without duplicates.
    Example::

        @given(st.data())
        def test_converges(data):
            ops = data.draw(lifecycles())
            for op in data.draw(arrival_orders(ops)): receiver.post({"operations": [op]})
            assert probe(ops[0]["cardId"])["status"] == ops[-1]["details"]["status"]
    """
    ops = list(lifecycle)
    return _arrivals(ops, duplicates and bool(ops))


@st.composite
def _arrivals(draw: DrawFn, ops: list[Operation], duplicates: bool) -> list[Operation]:
    indices = list(range(len(ops)))
    if duplicates:
        indices += draw(st.lists(st.sampled_from(range(len(ops))), max_size=len(ops)))
    return [copy.deepcopy(ops[i]) for i in draw(st.permutations(indices))]


def shuffled_lifecycles(
    path: Sequence[str] | None = None,
    *,
    max_updates: int = 3,
    duplicates: bool = True,
    card_id: str | None = None,
) -> SearchStrategy[tuple[list[Operation], list[Operation]]]:
    """Pairs ``(true_order, arrival_order)``: a lifecycle and one way it may arrive.

    Arguments are those of :func:`lifecycles` and :func:`arrival_orders`.
    Example::

        @given(shuffled_lifecycles())
        def test_converges(pair):
            truth, arrival = pair
            assert converge(arrival)[truth[-1]["cardId"]].status == truth[-1]["details"]["status"]
    """
    return lifecycles(path, max_updates=max_updates, card_id=card_id).flatmap(
        lambda truth: arrival_orders(truth, duplicates=duplicates).map(
            lambda arrival: (truth, arrival)
        )
    )
