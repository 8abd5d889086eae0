"""SequenceChecker.add in two steps: ``examine`` (stateless, fast path first) then ``record``."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from d1sim.contracts.lifecycle.sequence import SequenceChecker
from d1sim.contracts.strategies import notifications

CHECKER = SequenceChecker()
FIELDS = ["operationId", "cardId", "status", "details", "operation", "startTime", "endTime", "errorCode", "error"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)
NEAR = st.sampled_from(["PENDING", "SUCCESSFUL", "FAILED", "PRODUCE", "CARD_SHIPPED", "2025-01-17T06:28:02Z"])


def damage(op: dict[str, Any], data: st.DataObject) -> None:
    """Drop or replace one field, maybe the details' status, with anything JSON can hold."""
    field = data.draw(st.sampled_from([None, *FIELDS]))
    if field and data.draw(st.booleans()):
        op.pop(field, None)
    elif field:
        op[field] = data.draw(JSON | NEAR)
    if isinstance(op.get("details"), dict) and data.draw(st.booleans()):
        op["details"]["status"] = data.draw(JSON | NEAR | st.sampled_from(["DATA_EXCEPTION", "X"]))


@given(body=notifications(), data=st.data())
def test_the_fast_path_examines_any_operation_as_the_general_path_does(body, data) -> None:
    for op in body["operations"]:
        damage(op, data)
        assert CHECKER.examine(op, 1, "/operations/0") == CHECKER._examine_any(op, 1, "/operations/0")


@given(bodies=st.lists(notifications(), min_size=1, max_size=4), data=st.data())
def test_examine_then_record_is_add(bodies, data) -> None:
    operations = [op for body in bodies for op in body["operations"]]
    operations += copy.deepcopy(data.draw(st.lists(st.sampled_from(operations), max_size=3)))
    for op in operations:
        damage(op, data)
    whole, halves, found = SequenceChecker(), SequenceChecker(), []
    expected = [problem for i, op in enumerate(operations) for problem in whole.add(op, i, f"/{i}")]
    for i, op in enumerate(operations):
        examined = halves.examine(op, i, f"/{i}")
        if examined is not None:
            found += [(i, problem) for problem in examined[6]]
            if isinstance(examined[0], str):
                found += halves.record(examined)
    assert found == expected
    assert list(halves.finish()) == list(whole.finish())


def test_an_unstamped_shipment_key_is_the_same_in_every_process() -> None:
    details = {"status": "CARD_SHIPPED", "shipment": {"estimatedDeliveryDate": "2025-01-22T12:28:02Z"}}
    # A digest of the content, not hash(): that would differ from one interpreter to the next.
    assert CHECKER._body_key(details) == bytes.fromhex("e41c20f66274791e")
    assert CHECKER._body_key({**details, "shipment": {"lastUpdatedAt": "x"}}) is None


def _own_problems(op: dict[str, Any], i: int) -> Any:
    examined = CHECKER.examine(op, i, f"/{i}")
    return examined[6] if examined else ()


def _numbered_problems(checker: SequenceChecker, operations: list[dict[str, Any]], first: int = 0) -> list[Any]:
    return [p for i, op in enumerate(operations, first) for p in checker.add(op, i, f"/{i}")]


@given(bodies=st.lists(notifications(), min_size=1, max_size=4), data=st.data())
def test_records_handed_over_and_adopted_elsewhere_give_the_same_verdicts(bodies, data) -> None:
    operations = [op for body in bodies for op in body["operations"]]
    operations += copy.deepcopy(data.draw(st.lists(st.sampled_from(operations), max_size=3)))
    operations = data.draw(st.permutations(operations))
    whole = SequenceChecker()
    expected = _numbered_problems(whole, operations) + list(whole.finish())
    cut = data.draw(st.integers(0, len(operations)))
    before, after = SequenceChecker(), SequenceChecker()
    found = _numbered_problems(before, operations[:cut])
    held = len(before)
    handed = before.release(data.draw(st.integers(0, held)))  # the oldest first, then the rest
    handed += before.release(held)
    assert len(handed) == held and len(before) == 0
    for op_id, record in handed:
        after.adopt(op_id, record)
    found += _numbered_problems(after, operations[cut:], cut)
    assert found + list(after.finish()) == expected


@given(body=notifications(), data=st.data())
def test_an_operation_not_admitted_is_not_recorded(body, data) -> None:
    operations = body["operations"]
    for op in operations:
        damage(op, data)
    ids = [op.get("operationId") for op in operations]
    named = sorted({i for i in ids if isinstance(i, str)})  # only these are ever recorded
    refused = data.draw(st.sets(st.sampled_from(named))) if named else set()
    out = [isinstance(i, str) and i in refused for i in ids]
    asked: list[Any] = []
    checker = SequenceChecker(admit=lambda examined: asked.append(examined[0]) or examined[0] not in refused)
    plain = SequenceChecker()
    found = _numbered_problems(checker, operations)
    kept = [p for i, op in enumerate(operations) if not out[i] for p in plain.add(op, i, f"/{i}")]
    own = [(i, p) for i, op in enumerate(operations) if out[i] for p in _own_problems(op, i)]
    assert [p for p in found if not out[p[0]]] == kept
    assert [p for p in found if out[p[0]]] == own  # their own problems only
    assert len(checker) == len(plain)
    assert set(asked) <= set(named)  # asked once per operationId not held yet
    assert [(w, p) for _, w, p in checker.verdicts()] == list(plain.finish())
