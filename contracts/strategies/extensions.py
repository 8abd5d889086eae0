"""Forward compatibility: unknown statuses and unknown fields, as D1 may add both at any time.

Unknown statuses come from the vocabulary's list, then generated identifiers the model lacks.
Unknown fields may land at any depth: the default schema allows them everywhere, the strict
profile (d1sim's own lint) forbids them, which is how the tests tell a field was really added.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Set
from string import ascii_lowercase, ascii_uppercase
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import DrawFn, SearchStrategy

from d1sim.contracts.lifecycle import Lifecycle, load_lifecycle
from d1sim.contracts.notification.documents import load_document
from d1sim.contracts.notification.vocabulary import UNKNOWN_STATUSES
from d1sim.contracts.strategies.payloads import (
    MAX_REPORT_DELAY_MS,
    Operation,
    argument_problem,
    base_operation,
)
from d1sim.contracts.strategies.values import draw_later, draw_order, failing

# Each kind of object in a notification, with the schema that lists its known fields.
CONTAINER_SCHEMAS: dict[str, str] = {
    "envelope": "notification.schema.json",
    "operation": "operation.schema.json",
    "details": "details.schema.json",
    "shipment": "shipment.schema.json",
    "lastCheckpoint": "last-checkpoint.schema.json",
}
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(load_document(name)["properties"]) for kind, name in CONTAINER_SCHEMAS.items()
}

# camelCase names like the vendor's own; shrink to "a".
field_names: SearchStrategy[str] = st.tuples(
    st.text(ascii_lowercase, min_size=1, max_size=8), st.text(ascii_lowercase, max_size=8)
).map(lambda parts: parts[0] + parts[1].capitalize())

# Integers stay within 2**53 so that every JSON parser (JavaScript's too) reads them exactly.
json_values: SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(field_names, inner, max_size=3),
    max_leaves=6,
)


def _containers(body: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "envelope", body  # type: ignore[misc]
    for op in body.get("operations") or ():
        if not isinstance(op, dict):
            continue
        yield "operation", op
        details = op.get("details")
        if isinstance(details, dict):
            yield "details", details
            shipment = details.get("shipment")
            if isinstance(shipment, dict):
                yield "shipment", shipment
                if isinstance(shipment.get("lastCheckpoint"), dict):
                    yield "lastCheckpoint", shipment["lastCheckpoint"]


def with_unknown_fields(
    strategy: SearchStrategy[dict[str, Any]], *, max_fields: int = 5
) -> SearchStrategy[dict[str, Any]]:
    """Draw a notification from ``strategy`` and add 1..max_fields unknown fields to it.

    The fields land on the envelope, an operation, its details, the shipment or its
    lastCheckpoint (whichever exist), never replacing a known field; their values are any JSON,
    nested objects included. The result stays valid in the default profile, not the strict one.

    Example::

        @given(with_unknown_fields(notifications()))
        def test_tolerant(body): assert receiver.post(body).status_code == 204
    """
    if not isinstance(max_fields, int) or max_fields < 1:
        return failing(f"with_unknown_fields(max_fields={max_fields!r}): at least 1")
    return _with_fields(strategy, max_fields)


@st.composite
def _with_fields(
    draw: DrawFn, strategy: SearchStrategy[dict[str, Any]], max_fields: int
) -> dict[str, Any]:
    body = copy.deepcopy(draw(strategy))  # the source strategy may hand out shared objects
    if not isinstance(body, dict):
        raise InvalidArgument(
            f"with_unknown_fields: the strategy drew {type(body).__name__}, not a notification"
        )
    places = list(_containers(body))
    for _ in range(draw(st.integers(1, max_fields))):
        kind, target = draw(st.sampled_from(places))
        target[_draw_new_name(draw, KNOWN_FIELDS[kind] | target.keys())] = draw(json_values)
    return body


def _draw_new_name(draw: DrawFn, taken: Set[str]) -> str:
    # Never a known field (that would change the payload's meaning) nor one already added.
    return draw(field_names.filter(lambda name: name not in taken))


def unknown_statuses() -> SearchStrategy[str]:
    """``details.status`` names the model lacks: the vocabulary's list, then generated ones.

    Example::

        @given(unknown_statuses())
        def test_unknown(status): assert not load_lifecycle().is_known(status)
    """
    model = load_lifecycle()
    listed = [name for name in UNKNOWN_STATUSES if not model.is_known(name)]
    words = st.text(ascii_uppercase, min_size=1, max_size=10)
    generated = (
        st.lists(words, min_size=1, max_size=4)
        .map("_".join)
        .filter(lambda name: not model.is_known(name))
    )
    return st.sampled_from(listed) | generated if listed else generated


def operations_with_unknown_status(
    *, card_id: str | None = None, operation_id: str | None = None
) -> SearchStrategy[Operation]:
    """PRODUCE operations with an unknown ``details.status`` (any operation status, consistent).

    Example::

        @given(operations_with_unknown_status())
        def test_tolerant(op): assert receiver.post({"operations": [op]}).status_code == 204
    """
    model = load_lifecycle()
    problem = argument_problem("operations_with_unknown_status", model, None, card_id, operation_id)
    if problem:
        return failing(problem)
    return _unknown_status_operations(model, card_id, operation_id)


@st.composite
def _unknown_status_operations(
    draw: DrawFn, model: Lifecycle, card_id: str | None, operation_id: str | None
) -> Operation:
    status = draw(unknown_statuses())
    order = draw_order(draw, card_id=card_id, operation_id=operation_id)
    op_statuses = list(dict.fromkeys(s.operation_status for s in model.states.values()))
    op_status = draw(st.sampled_from(op_statuses))
    op = base_operation(
        model, order, op_status, draw_later(draw, order.start, max_ms=MAX_REPORT_DELAY_MS)
    )
    op["details"] = {"status": status, **order.correlation}
    op.update(order.correlation)
    return op
