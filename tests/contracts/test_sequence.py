"""Sequence checks: any arrival order of a legal lifecycle passes; impossible sets fail."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from d1sim.contracts.lifecycle import load_lifecycle
from d1sim.contracts.lifecycle.sequence import SequenceChecker, check_operation, check_sequence
from d1sim.contracts.payloads.factory import PayloadFactory

MODEL = load_lifecycle()
PATHS = sorted(MODEL.paths())


@given(path=st.sampled_from(PATHS), seed=st.integers(0, 2**16), data=st.data())
def test_every_path_passes_in_every_arrival_order(path: tuple[str, ...], seed: int, data: st.DataObject) -> None:
    ops = PayloadFactory(seed).lifecycle(path)
    arrival = data.draw(st.permutations(ops))
    duplicated = arrival + data.draw(st.lists(st.sampled_from(ops), max_size=3))
    assert check_sequence(duplicated) == []


def _ops(*statuses: str, seed: int = 1) -> list[dict[str, Any]]:
    factory = PayloadFactory(seed)
    order = factory.new_order()
    return [factory.operation(order, s, order.start) for s in statuses]


def test_shipped_and_exception_cannot_both_happen() -> None:
    problems = check_sequence(_ops("CARD_PROD_DONE", "CARD_SHIPPED", "DATA_EXCEPTION"))
    assert [(p.code, p.severity) for p in problems] == [("lifecycle.impossible", "error")]
    assert "DATA_EXCEPTION" in problems[0].message and "CARD_SHIPPED" in problems[0].message


def test_two_failure_terminals_cannot_both_happen() -> None:
    problems = check_sequence(_ops("DATA_EXCEPTION", "CARD_PROD_CANCELED"))
    assert [p.code for p in problems] == ["lifecycle.impossible"]


def test_forward_skip_is_a_warning() -> None:
    problems = check_sequence(_ops("CARD_PROD_READY", "CARD_PROD_DONE"))
    assert [(p.code, p.severity) for p in problems] == [("lifecycle.skip", "warning")]
    assert "CARD_PROD_ONGOING" in problems[0].message


def test_status_and_operation_status_must_agree() -> None:
    [op] = _ops("CARD_SHIPPED")
    op["status"] = "PENDING"
    del op["endTime"]
    problems = check_operation(op, base="/operations/0")
    assert [(p.pointer, p.code) for p in problems] == [("/operations/0/status", "lifecycle.status")]


def test_end_time_only_when_ended() -> None:
    [pending, failed] = _ops("DATA_PREPARED", "DATA_EXCEPTION")
    pending["endTime"] = failed["endTime"]
    del failed["endTime"]
    assert [p.code for p in check_operation(pending)] == ["lifecycle.endTime"]
    assert [p.pointer for p in check_operation(failed)] == ["/endTime"]


def test_error_fields_only_on_failed() -> None:
    [op] = _ops("DATA_PREPARED")
    op["errorCode"], op["error"] = "FIELD_INVALID_FORMAT", "pan"
    assert [p.pointer for p in check_operation(op)] == ["/errorCode", "/error"]


def test_end_time_before_start_time_is_a_warning() -> None:
    [op] = _ops("CARD_SHIPPED")
    op["endTime"] = "2000-01-01T00:00:00Z"
    assert [(p.code, p.severity) for p in check_operation(op)] == [("lifecycle.endTime", "warning")]


def test_card_id_must_not_change_within_an_operation() -> None:
    first, second = _ops("CARD_PROD_REQUESTED", "DATA_PREPARED")
    second["cardId"] = "ffff-0000-ffff-0000"
    assert [p.code for p in check_sequence([first, second])] == ["lifecycle.card"]


def test_only_the_first_shipment_notification_may_lack_last_updated_at() -> None:
    ops = PayloadFactory(2).lifecycle(shipment_updates=2)
    later = copy.deepcopy(ops[-1])
    del later["details"]["shipment"]["lastUpdatedAt"]
    assert [p.code for p in check_sequence([*ops, later])] == ["lifecycle.shipmentOrder"]
    assert check_sequence([*ops, copy.deepcopy(ops[-3])]) == []  # a duplicate first report is fine


def test_unknown_statuses_and_other_operations_are_left_alone() -> None:
    factory = PayloadFactory(3)
    order = factory.new_order()
    unknown = factory.operation(order, "CARD_PROD_QUALITY_CHECK", order.start)
    other = {**unknown, "operation": "ACTIVATE", "status": "SUCCESSFUL"}
    assert check_sequence([factory.operation(order, "CARD_PROD_REQUESTED", order.start), unknown, other]) == []


def test_where_tokens_point_back_to_the_offending_operation() -> None:
    checker = SequenceChecker()
    shipped, failed = _ops("CARD_SHIPPED", "DATA_EXCEPTION")
    checker.add(shipped, where=("a.jsonl", 1), base="/operations/0")
    checker.add(failed, where=("b.jsonl", 7), base="/operations/2")
    [(where, problem)] = list(checker.finish())
    assert where == ("b.jsonl", 7) and problem.pointer == "/operations/2/details/status"
