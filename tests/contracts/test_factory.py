"""The payload factory: realistic, consistent, deterministic, always valid."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from d1sim.contracts.lifecycle.model import load_lifecycle
from d1sim.contracts.lifecycle.sequence import check_sequence
from d1sim.contracts.notification.validation import validate_notification
from d1sim.contracts.notification.vocabulary import CARRIERS, CHECKPOINT_PLACES, PRODUCTION_SITES
from d1sim.contracts.payloads.factory import DEFAULT_START, PayloadFactory, format_time, minimal_operation, notification

MODEL = load_lifecycle()
PATHS = sorted(MODEL.paths())
CARRIER_CODES = {c.code for c in CARRIERS}


@given(path=st.sampled_from(PATHS), seed=st.integers(0, 2**32 - 1), updates=st.integers(0, 5))
def test_every_factory_output_validates_strictly_and_is_a_legal_lifecycle(path: tuple[str, ...], seed: int,
                                                                         updates: int) -> None:
    ops = PayloadFactory(seed).lifecycle(path, shipment_updates=updates)
    assert validate_notification(notification(ops), strict=True) == []
    assert check_sequence(ops) == []


@given(seed=st.integers(0, 2**32 - 1))
def test_fields_are_consistent_within_an_order(seed: int) -> None:
    ops = PayloadFactory(seed).lifecycle(shipment_updates=3)
    assert len({(op["operationId"], op["cardId"], op["startTime"]) for op in ops}) == 1
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", ops[0]["operationId"])
    assert re.fullmatch(r"[0-9a-f]{4}(-[0-9a-f]{4}){3}", ops[0]["cardId"])
    start = datetime.fromisoformat(ops[0]["startTime"]).date()
    due = {op["details"].get("dueDate") for op in ops} - {None}
    assert len(due) == 1 and date.fromisoformat(due.pop()) > start
    shipments = [op["details"]["shipment"] for op in ops if "shipment" in op["details"]]
    assert list(shipments[0]) == ["estimatedDeliveryDate"]
    tracked = shipments[1:]
    assert {s["carrier"] for s in tracked} <= CARRIER_CODES and len({s["trackingNumber"] for s in tracked}) == 1
    assert all(s["trackingNumber"] in s["trackingUrl"] for s in tracked)
    stamps = [s["lastUpdatedAt"] for s in tracked]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert len({op.get("endTime") for op in ops if op["status"] == "SUCCESSFUL"}) == 1


@given(seed=st.integers(0, 2**32 - 1))
def test_failures_carry_error_fields_and_end_time(seed: int) -> None:
    factory = PayloadFactory(seed)
    [_, failed] = factory.lifecycle(["CARD_PROD_REQUESTED", "DATA_EXCEPTION"])
    assert failed["status"] == "FAILED" and "endTime" in failed
    assert failed["errorCode"] == "FIELD_INVALID_FORMAT" and failed["error"]
    [_, cancelled] = factory.lifecycle(["CARD_PROD_REQUESTED", "CARD_PROD_CANCELED"])
    assert cancelled["status"] == "FAILED" and "errorCode" not in cancelled


def test_same_seed_same_payloads_other_seed_other_payloads() -> None:
    assert PayloadFactory(11).lifecycle() == PayloadFactory(11).lifecycle()
    assert PayloadFactory(11).lifecycle() != PayloadFactory(12).lifecycle()


def test_correlated_orders_repeat_file_name_and_request_id() -> None:
    factory = PayloadFactory(8)
    order = factory.new_order(correlated=True)
    op = factory.operation(order, "DATA_PREPARED", order.start)
    assert op["inputFileName"] == op["details"]["inputFileName"].strip() and op["inputFileName"].endswith(".csv")
    assert op["issuerRequestId"] == op["details"]["issuerRequestId"]
    assert validate_notification(notification([op]), strict=True) == []


@given(path=st.sampled_from(PATHS), seed=st.integers(0, 2**16))
def test_minimal_operations_keep_only_required_fields_and_stay_legal(path: tuple[str, ...], seed: int) -> None:
    ops = [minimal_operation(op) for op in PayloadFactory(seed).lifecycle(path)]
    assert validate_notification(notification(ops)) == []
    assert check_sequence(ops) == []
    assert all(set(op["details"]) == {"status"} for op in ops)
    assert all(set(op) <= {"operationId", "operation", "status", "startTime", "endTime", "cardId", "details"}
               for op in ops)


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31 + 7])
def test_fast_identifiers_draw_exactly_what_faker_draws(seed: int) -> None:
    """The hand-unrolled bothify/hexify give faker's strings and leave the generator in step."""
    ours, theirs = PayloadFactory(seed).fake, PayloadFactory(seed).fake
    for carrier in CARRIERS * 3:
        assert ours.card_id() == "-".join(theirs.hexify("^^^^") for _ in range(4))
        assert ours.operation_id() == theirs.uuid4()
        assert ours.tracking_number(carrier) == theirs.bothify(carrier.tracking_pattern,
                                                               letters="ABCDEFGHJKLMNPRSTUVWXYZ")
        assert ours.input_file_name() == f"ORDERS_{theirs.numerify('########')}_{theirs.numerify('###')}.csv"
        assert ours.issuer_request_id() == theirs.bothify("REQ-########-????").upper()
        assert ours.production_site() == theirs.random_element(PRODUCTION_SITES)
        assert ours.carrier() == theirs.random_element(CARRIERS)
        assert ours.checkpoint_place(carrier.country) == (
            theirs.random_element(CHECKPOINT_PLACES[carrier.country]), carrier.country)
    assert ours.random_int(0, 10**9) == theirs.random_int(0, 10**9)


def test_times_are_written_in_utc_with_milliseconds() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_time(datetime(2025, 1, 17, 7, 28, 2, 492999, tzinfo=paris)) == "2025-01-17T06:28:02.492Z"
    assert format_time(DEFAULT_START) == "2025-01-17T06:28:02.492Z"
