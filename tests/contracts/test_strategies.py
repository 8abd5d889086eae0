"""The public hypothesis strategies: valid where promised, legal in any order, small when shrunk."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import orjson
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from d1sim.contracts.lifecycle import load_lifecycle
from d1sim.contracts.lifecycle.convergence import converge
from d1sim.contracts.lifecycle.sequence import check_sequence
from d1sim.contracts.notification.validation import validate_notification
from d1sim.contracts.notification.vocabulary import CARRIERS, CHECKPOINT_PLACES, PRODUCTION_SITES
from d1sim.contracts.payloads.factory import format_time, notification
from d1sim.contracts.strategies import (
    EPOCH,
    arrival_orders,
    invalid_notifications,
    lifecycles,
    minimal_notifications,
    non_json_bodies,
    notifications,
    operations,
    operations_with_unknown_status,
    shuffled_lifecycles,
    unknown_statuses,
    with_unknown_fields,
)
from d1sim.contracts.strategies.malformed import InvalidNotification

MODEL = load_lifecycle()
CARRIER_CODES = {c.code for c in CARRIERS}
SHRINK = settings(database=None, max_examples=2_000)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


@given(notifications())
def test_every_notification_validates_strictly_and_holds_legal_orders(body: dict[str, Any]) -> None:
    assert validate_notification(body, strict=True) == []
    assert check_sequence(body["operations"]) == []
    assert 1 <= len(body["operations"]) <= 10
    assert len({op["operationId"] for op in body["operations"]}) == len(body["operations"])


@given(status=st.sampled_from(list(MODEL.states)), data=st.data())
def test_operations_of_a_status_have_consistent_fields(status: str, data: st.DataObject) -> None:
    op = data.draw(operations(status))
    op_status, details = op["status"], op["details"]
    assert details["status"] == status and op_status == MODEL.operation_status(status)
    assert ("endTime" in op) == MODEL.end_time_expected(op_status)
    assert {"errorCode", "error"} & set(op) == set() or MODEL.error_allowed(op_status)
    assert ("shipment" in details) == MODEL.states[status].repeatable
    start = _time(op["startTime"])
    assert start >= EPOCH and ("endTime" not in op or _time(op["endTime"]) >= start)
    if "dueDate" in details:
        assert date.fromisoformat(details["dueDate"]) > start.date()
        assert details["productionSite"] in PRODUCTION_SITES
    _check_shipment(details.get("shipment"), op)
    assert validate_notification(notification([op]), strict=True) == []


def _check_shipment(shipment: dict[str, Any] | None, op: dict[str, Any]) -> None:
    if not shipment or "carrier" not in shipment:
        return
    carrier = next(c for c in CARRIERS if c.code == shipment["carrier"])
    assert _time(shipment["lastUpdatedAt"]) >= _time(op["endTime"])
    if "lastCheckpoint" in shipment:
        assert shipment["lastCheckpoint"]["city"] in CHECKPOINT_PLACES[carrier.country]
    if "trackingUrl" in shipment:
        assert shipment["trackingNumber"] in shipment["trackingUrl"]


@given(operations(card_id="card-1", operation_id="op_1"))
def test_fixed_ids_are_used(op: dict[str, Any]) -> None:
    assert (op["cardId"], op["operationId"]) == ("card-1", "op_1")


@given(shuffled_lifecycles())
def test_every_lifecycle_is_legal_in_every_arrival_order_and_converges(
    pair: tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]],
) -> None:
    truth, arrival = pair
    assert validate_notification(notification(truth), strict=True) == []
    assert check_sequence(truth) == [] and check_sequence(arrival) == []
    [state] = converge(arrival).values()
    last = truth[-1]["details"]
    assert state.status == last["status"]
    assert state.shipment == (last["shipment"] if MODEL.states[last["status"]].repeatable else None)
    assert sorted(map(json.dumps, truth)) == sorted(set(map(json.dumps, arrival)))


@given(lifecycles(max_updates=4))
def test_a_lifecycle_is_one_order_along_the_model(ops: list[dict[str, Any]]) -> None:
    assert len({(op["operationId"], op["cardId"], op["startTime"]) for op in ops}) == 1
    statuses = [op["details"]["status"] for op in ops]
    assert statuses[0] == MODEL.initial
    assert all(MODEL.may_follow(a, b) for a, b in zip(statuses, statuses[1:], strict=False))
    shipments = [op["details"]["shipment"] for op in ops if "shipment" in op["details"]]
    assert len(shipments) <= 5 and all("lastUpdatedAt" in s for s in shipments[1:])
    stamps = [s["lastUpdatedAt"] for s in shipments if "lastUpdatedAt" in s]
    assert stamps == sorted(set(stamps))
    assert len({op["endTime"] for op in ops if "endTime" in op}) <= 1


@given(lifecycles(["CARD_PROD_REQUESTED", "DATA_PREPARED", "DATA_EXCEPTION"], card_id="c-7"))
def test_a_given_path_is_followed(ops: list[dict[str, Any]]) -> None:
    assert [op["details"]["status"] for op in ops] == [
        "CARD_PROD_REQUESTED",
        "DATA_PREPARED",
        "DATA_EXCEPTION",
    ]
    assert {op["cardId"] for op in ops} == {"c-7"}


@given(ops=lifecycles(), data=st.data())
def test_arrival_orders_without_duplicates_are_permutations(
    ops: list[dict[str, Any]], data: st.DataObject
) -> None:
    arrival = data.draw(arrival_orders(ops, duplicates=False))
    assert sorted(map(json.dumps, arrival)) == sorted(map(json.dumps, ops))
    assert all(a is not b for a in arrival for b in ops)  # copies: a receiver may mutate them


@given(unknown_statuses())
def test_unknown_statuses_never_collide_with_the_model(status: str) -> None:
    assert status and not MODEL.is_known(status)


@given(operations_with_unknown_status())
def test_unknown_status_operations_validate_and_never_move_the_state(op: dict[str, Any]) -> None:
    body = notification([op])
    assert validate_notification(body) == [] and check_sequence([op]) == []
    assert [p.pointer for p in validate_notification(body, strict=True)] == [
        "/operations/0/details/status"
    ]
    assert converge([op]) == {}


@given(with_unknown_fields(notifications(max_operations=3)))
def test_unknown_fields_validate_by_default_but_not_strictly(body: dict[str, Any]) -> None:
    assert validate_notification(body) == []
    strict = validate_notification(body, strict=True)
    assert strict and all(p.message == "unknown field (strict profile)" for p in strict)


@given(minimal_notifications())
def test_minimal_notifications_carry_only_required_fields(body: dict[str, Any]) -> None:
    assert validate_notification(body, strict=True) == []
    for op in body["operations"]:
        assert set(op) - {"endTime"} == {
            "operationId",
            "operation",
            "status",
            "startTime",
            "cardId",
            "details",
        }
        assert list(op["details"]) == ["status"]


@given(invalid_notifications())
def test_invalid_notifications_never_validate_and_point_at_their_problem(
    case: InvalidNotification,
) -> None:
    problems = validate_notification(case.body)
    assert problems and case.pointer in {p.pointer for p in problems}


@given(non_json_bodies())
def test_non_json_bodies_never_parse(raw: bytes) -> None:
    assert isinstance(raw, bytes)
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)


BAD_ARGUMENTS: list[tuple[Callable[[], st.SearchStrategy[Any]], str]] = [
    (lambda: operations(status="NOPE"), "NOPE"),
    (lambda: operations(card_id="has space"), "cardId"),
    (lambda: operations_with_unknown_status(operation_id="x" * 65), "operationId"),
    (lambda: lifecycles(["CARD_PROD_REQUESTED", "CARD_SHIPPED"]), "cannot directly follow"),
    (lambda: lifecycles(["NOPE"]), "NOPE"),
    (lambda: lifecycles(max_updates=-1), "max_updates"),
    (lambda: notifications(min_operations=0), "min_operations"),
    (lambda: with_unknown_fields(st.just([1])), "not a notification"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("build", "message"), BAD_ARGUMENTS)
def test_bad_arguments_fail_when_drawn_not_when_built(
    build: Callable[[], st.SearchStrategy[Any]], message: str
) -> None:
    strategy = build()  # must not raise: strategies stay composable

    @settings(max_examples=1, database=None)
    @given(strategy)
    def draw(value: Any) -> None:
        pass

    with pytest.raises(InvalidArgument, match=message):
        draw()


def test_a_shipped_notification_shrinks_to_one_small_operation() -> None:
    body = find(
        notifications(),
        lambda b: any(op["details"]["status"] == "CARD_SHIPPED" for op in b["operations"]),
        settings=SHRINK,
    )
    [op] = body["operations"]
    assert op["startTime"] == op["endTime"] == format_time(EPOCH)
    assert op["cardId"] == "0000-0000-0000-0000"
    assert list(op["details"]["shipment"]) == ["estimatedDeliveryDate"]


def test_a_tracked_shipment_shrinks_to_the_first_carrier_site_and_place() -> None:
    op = find(
        operations("CARD_SHIPPED"), lambda o: "carrier" in o["details"]["shipment"], settings=SHRINK
    )
    shipment, first = op["details"]["shipment"], CARRIERS[0]
    assert (
        shipment["carrier"] == first.code and op["details"]["productionSite"] == PRODUCTION_SITES[0]
    )
    assert shipment["lastCheckpoint"]["city"] == CHECKPOINT_PLACES[first.country][0]
    assert shipment["lastUpdatedAt"] == format_time(EPOCH)


def test_other_strategies_shrink_to_their_simplest_case() -> None:
    assert len(find(lifecycles(), lambda ops: len(ops) > 1, settings=SHRINK)) == 2
    assert find(invalid_notifications(), lambda case: True, settings=SHRINK) == ([], "")
    assert find(non_json_bodies(), lambda raw: True, settings=SHRINK) == b""


def _statuses(body: dict[str, Any]) -> set[str]:
    return {op["details"]["status"] for op in body["operations"]}


def test_a_failing_batch_shrinks_to_the_operations_that_matter() -> None:
    pair = {"CARD_SHIPPED", "DATA_EXCEPTION"}
    body = find(notifications(), lambda b: pair <= _statuses(b), settings=SHRINK)
    assert sorted(op["details"]["status"] for op in body["operations"]) == sorted(pair)
    # Bodies mix cards (which body is found is not pinned: card ids are values, not shape).
    mixed = find(
        notifications(),
        lambda b: len({op["cardId"] for op in b["operations"]}) > 1,
        settings=SHRINK,
    )
    assert len(mixed["operations"]) <= 10
