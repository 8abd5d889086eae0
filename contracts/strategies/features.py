"""The whole space the contract allows, not only D1's usual shape, each feature named.

D1's notifications usually look alike: PRODUCE operations, timestamps like
``2025-01-17T06:28:02.492Z``, one order per card. The schemas allow more, and a receiver written
against the usual shape breaks on the rest. These strategies draw :class:`Featured` bodies: the
notification and the names of the contract features it exercises (:data:`FEATURES`), so a
failing example says which feature broke the receiver.

Example::

    from hypothesis import given
    from d1sim.contracts.strategies.features import featured_batches

    @given(featured_batches(2, 10))
    def test_receiver_accepts_anything_valid(drawn):
        assert client.post(URL, json=drawn.body).status_code == 204, drawn.features
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from d1sim.contracts.lifecycle import load_lifecycle
from d1sim.contracts.notification.documents import load_document
from d1sim.contracts.payloads.factory import minimal_operation
from d1sim.contracts.strategies.extensions import operations_with_unknown_status, with_unknown_fields
from d1sim.contracts.strategies.histories import lifecycles
from d1sim.contracts.strategies.payloads import notifications
from d1sim.contracts.strategies.values import between, draw_card_id, operation_ids

Operation = dict[str, Any]

OTHER_KINDS = "other operation kinds in the notification"
TIMESTAMP_FORMS = "timestamps in another ISO 8601 form"
REORDER = "a re-order of a card (a later startTime, another operationId)"
DUPLICATE_IN_BATCH = "the same operation twice in one batch"
UNKNOWN_STATUS = "an unknown details.status inside a batch"
MINIMAL = "a minimal operation (required fields only) inside a batch"
UNKNOWN_FIELDS = "unknown fields (envelope, operation, details, shipment, lastCheckpoint)"
FEATURES = (OTHER_KINDS, TIMESTAMP_FORMS, REORDER, DUPLICATE_IN_BATCH, UNKNOWN_STATUS, MINIMAL,
            UNKNOWN_FIELDS)

# Every form the date-time pattern of types.schema.json accepts for one instant.
_FORMS: dict[str, Callable[[datetime], str]] = {
    "no fraction, Z": lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"),
    "microseconds, Z": lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    "+00:00": lambda t: t.isoformat(timespec="milliseconds"),
    "offset +02:00": lambda t: t.astimezone(timezone(timedelta(hours=2))).isoformat(
        timespec="milliseconds"),
    "offset -05:30": lambda t: t.astimezone(timezone(-timedelta(hours=5, minutes=30))).isoformat(
        timespec="microseconds"),
}
_TIME_FIELDS = {"operation": ("startTime", "endTime"),
                "shipment": ("estimatedDeliveryDate", "lastUpdatedAt"),
                "lastCheckpoint": ("checkpointTime",)}
def _other_kinds() -> list[str]:
    """The published operation kinds other than PRODUCE (read on first use, not at import)."""
    enum = load_document("operation.schema.json")["properties"]["operation"]["anyOf"][0]["enum"]
    return [k for k in enum if k != "PRODUCE"]


@dataclass(frozen=True, slots=True)
class Featured:
    """A notification body and the contract features it exercises (empty: D1's usual shape)."""

    body: dict[str, Any]
    features: tuple[str, ...] = ()

    def label(self) -> str:
        """`` [contract features: ...]`` for a request label, or nothing."""
        return f" [contract features: {'; '.join(self.features)}]" if self.features else ""


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.upper()).astimezone(UTC)


def _time_holders(op: Operation) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """Each object of ``op`` that holds date-times, with the names of those fields."""
    yield op, _TIME_FIELDS["operation"]
    details = op.get("details")
    shipment = details.get("shipment") if isinstance(details, dict) else None
    if isinstance(shipment, dict):
        yield shipment, _TIME_FIELDS["shipment"]
        if isinstance(shipment.get("lastCheckpoint"), dict):
            yield shipment["lastCheckpoint"], _TIME_FIELDS["lastCheckpoint"]


def _rewrite_times(operations: list[Operation], rewrite: Callable[[datetime], str]) -> list[Operation]:
    result = copy.deepcopy(operations)
    for op in result:
        for holder, names in _time_holders(op):
            for name in names:
                if isinstance(holder.get(name), str):
                    holder[name] = rewrite(_instant(holder[name]))
        _due_date_as_date_time(op, rewrite)
    return result


def _due_date_as_date_time(op: Operation, rewrite: Callable[[datetime], str]) -> None:
    """``details.dueDate`` as a date-time of the same day (the contract takes a date or a date-time)."""
    details = op.get("details")
    if not isinstance(details, dict):
        return
    due = details.get("dueDate")
    if isinstance(due, str) and len(due) == 10:
        # Noon UTC stays on the same calendar day in every offset the forms use (+02:00, -05:30).
        details["dueDate"] = rewrite(datetime.fromisoformat(f"{due}T12:00:00+00:00"))


def reformat_times(body: dict[str, Any], form: str) -> dict[str, Any]:
    """``body`` with every date-time written in ``form`` (one of :data:`_FORMS`), same instants."""
    return {**body, "operations": _rewrite_times(body["operations"], _FORMS[form])}


@st.composite
def _other_kind(draw: DrawFn, start: str) -> Operation:
    status = draw(st.sampled_from(["PENDING", "SUCCESSFUL", "FAILED"]))
    op: Operation = {"operationId": draw(operation_ids), "operation": draw(st.sampled_from(_other_kinds())),
                     "status": status, "startTime": start, "cardId": draw_card_id(draw)}
    if status != "PENDING":
        op["endTime"] = start
    if draw(st.booleans()):
        op["details"] = {"status": draw(st.sampled_from(["ACTIVE", "DONE", "IN_PROGRESS"]))}
    return op


def _reorder(draw: DrawFn, op: Operation) -> Operation:
    """A new order of ``op``'s card, started later: what an issuer sends after a failure."""
    model = load_lifecycle()
    later = _instant(op["startTime"]) + timedelta(milliseconds=draw(between(1, 86_400_000)))
    stamp = _d1_time(later)
    first = model.main_path[0]
    return {"operationId": draw(operation_ids), "operation": model.operation,
            "status": model.operation_status(first), "startTime": stamp, "cardId": op["cardId"],
            "details": {"status": first}}


@st.composite
def featured_batches(draw: DrawFn, low: int, high: int) -> Featured:
    """Bodies of ``low..high`` operations, each contract feature drawn in or out (shrinks out)."""
    body = draw(notifications(low, high))
    ops: list[Operation] = body["operations"]
    features: list[str] = []
    room = lambda: len(ops) < high  # noqa: E731 - every addition keeps the agreed maximum
    if room() and draw(st.booleans()):
        ops.insert(draw(between(0, len(ops))), draw(_other_kind(ops[0]["startTime"])))
        features.append(OTHER_KINDS)
    if room() and draw(st.booleans()):
        ops.append(_reorder(draw, ops[draw(between(0, len(ops) - 1))]))
        features.append(REORDER)
    if room() and draw(st.booleans()):
        ops.append(copy.deepcopy(ops[draw(between(0, len(ops) - 1))]))
        features.append(DUPLICATE_IN_BATCH)
    if room() and draw(st.booleans()):
        ops.insert(draw(between(0, len(ops))), draw(operations_with_unknown_status()))
        features.append(UNKNOWN_STATUS)
    if draw(st.booleans()):
        at = draw(between(0, len(ops) - 1))
        ops[at] = minimal_operation(ops[at])
        features.append(MINIMAL)
    body = _with_forms_and_fields(draw, body, features)
    return Featured(body, tuple(features))


def _with_forms_and_fields(draw: DrawFn, body: dict[str, Any], features: list[str]) -> dict[str, Any]:
    if draw(st.booleans()):
        form = draw(st.sampled_from(sorted(_FORMS)))
        body = reformat_times(body, form)
        features.append(f"{TIMESTAMP_FORMS} ({form})")
    if draw(st.booleans()):
        body = draw(with_unknown_fields(st.just(body)))
        features.append(UNKNOWN_FIELDS)
    return body


@st.composite
def featured_notifications(draw: DrawFn) -> Featured:
    """One PRODUCE operation per body, in any timestamp form the contract accepts."""
    body = draw(notifications(1, 1))
    if not draw(st.booleans()):
        return Featured(body)
    form = draw(st.sampled_from(sorted(_FORMS)))
    return Featured(reformat_times(body, form), (f"{TIMESTAMP_FORMS} ({form})",))


def featured_space() -> SearchStrategy[Featured]:
    """Either shape: a lone operation or a batch of up to 10 (for integrators' own tests)."""
    return st.one_of(featured_notifications(), featured_batches(2, 10))


def shift_times(operations: list[Operation], delta: timedelta) -> list[Operation]:
    """Copies of ``operations`` with every date-time moved by ``delta`` (written as D1 does)."""
    return _rewrite_times(operations, lambda moment: _d1_time(moment + delta))


def _d1_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


REORDER_CARD = "reordered-card"
YEAR_AND_MORE = timedelta(days=400)  # more than the span of drawn start times


def reorders() -> SearchStrategy[list[Operation]]:
    """One card ordered twice: a first order that failed (DATA_EXCEPTION) or was cancelled,
    then a re-order with a later ``startTime``, both lifecycles in true order, one after the other.
    """
    model = load_lifecycle()
    failed = sorted({p for p in model.paths()
                     if model.operation_status(p[-1]) == "FAILED"}, key=lambda p: (len(p), p))
    first = st.sampled_from(failed).flatmap(lambda p: lifecycles(p, card_id=REORDER_CARD))
    second = lifecycles(card_id=REORDER_CARD, max_updates=2)
    return st.tuples(first, second).map(
        lambda pair: shift_times(pair[0], -YEAR_AND_MORE) + _another_order(pair[0], pair[1]))


def _another_order(first: list[Operation], second: list[Operation]) -> list[Operation]:
    """``second`` under an operationId other than ``first``'s (shrunk ids may coincide)."""
    if first[0]["operationId"] != second[0]["operationId"]:
        return second
    return [{**op, "operationId": op["operationId"] + "-2"} for op in second]
