"""Lifecycle checks over operations: each one alone, and each operationId's set in any order.

Arrival order is not guaranteed, so the sequence check looks at *which* statuses an operation
reported, never at the order they came in: the known ones must lie on one path of the model.

Example::

    >>> from contracts.sequence import SequenceChecker
    >>> checker = SequenceChecker()
    >>> op = {"operationId": "o1", "operation": "PRODUCE", "status": "SUCCESSFUL",
    ...       "startTime": "2025-01-17T06:28:02Z", "endTime": "2025-01-18T06:28:02Z",
    ...       "cardId": "c1", "details": {"status": "CARD_SHIPPED"}}
    >>> checker.add(op, where="line 1")
    []
    >>> [p.message for _, p in checker.add({**op, "details": {"status": "DATA_EXCEPTION"},
    ...     "status": "FAILED"}, where="line 2") + list(checker.finish())]
    ['DATA_EXCEPTION and CARD_SHIPPED cannot both happen to one operation']
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from datetime import datetime
from typing import Any

from contracts.lifecycle import Lifecycle, load_lifecycle
from contracts.problems import Problem, join_pointer


def parse_time(value: Any) -> datetime | None:
    """Parse an ISO 8601 date-time; None when absent or unreadable (the schema reports that)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def check_operation(op: Mapping[str, Any], model: Lifecycle | None = None, base: str = "") -> list[Problem]:
    """The per-operation rules: status pairing, endTime and errorCode/error presence.

    Only PRODUCE operations with a mapping ``details`` are checked; pointers start at ``base``.
    """
    model = model or load_lifecycle()
    details = op.get("details")
    if op.get("operation") != model.operation or not isinstance(details, Mapping):
        return []
    problems = []
    op_status, status = op.get("status"), details.get("status")
    if isinstance(status, str) and model.is_known(status):
        expected = model.operation_status(status)
        if op_status != expected:
            problems.append(Problem(join_pointer(base, "status"),
                f"{status} goes with operation status {expected}, not {op_status}", code="lifecycle.status"))
    if isinstance(op_status, str):
        problems += _check_end_time(op, op_status, model, base)
        if not model.error_allowed(op_status):
            problems += [Problem(join_pointer(base, field),
                f"'{field}' only appears on a FAILED operation, not on {op_status}", code="lifecycle.error")
                for field in ("errorCode", "error") if field in op]
    return problems


def _check_end_time(op: Mapping[str, Any], op_status: str, model: Lifecycle, base: str) -> list[Problem]:
    pointer = join_pointer(base, "endTime")
    if model.end_time_expected(op_status) and "endTime" not in op:
        return [Problem(pointer, f"endTime is missing on a {op_status} operation", code="lifecycle.endTime")]
    if not model.end_time_expected(op_status) and "endTime" in op:
        return [Problem(pointer, f"endTime must not be present while the operation is {op_status}",
                        code="lifecycle.endTime")]
    start, end = parse_time(op.get("startTime")), parse_time(op.get("endTime"))
    if start and end and start.tzinfo and end.tzinfo and end < start:
        return [Problem(pointer, "endTime is before startTime", "warning", code="lifecycle.endTime")]
    return []


class SequenceChecker:
    """Accumulates the PRODUCE operations of many operationIds, in any arrival order.

    ``add`` returns the per-operation problems at once; ``finish`` returns the problems of each
    operationId's whole set, paired with the ``where`` token the caller gave for the operation
    they point at (a line number, a tuple: anything hashable). Memory is one small record per
    operationId, so arbitrarily long captures stream.
    """

    def __init__(self, model: Lifecycle | None = None) -> None:
        self.model = model or load_lifecycle()
        self._order = {name: i for i, name in enumerate(self.model.states)}
        self._names = list(self.model.states)
        self._tracks: dict[str, list[Any]] = {}

    def add(self, op: Mapping[str, Any], where: Hashable, base: str = "") -> list[tuple[Hashable, Problem]]:
        """Record one operation located at ``where`` (``base`` is its JSON pointer)."""
        problems = [(where, p) for p in check_operation(op, self.model, base)]
        details = op.get("details")
        op_id = op.get("operationId")
        if op.get("operation") != self.model.operation or not isinstance(details, Mapping) or not isinstance(op_id, str):
            return problems
        track = self._tracks.get(op_id)
        if track is None:
            # [cardId, cardId location, location per known state..., unstamped shipment bodies]
            track = self._tracks[op_id] = [op.get("cardId"), None, *([None] * len(self._order)), None]
        elif op.get("cardId") != track[0]:
            problems.append((where, Problem(join_pointer(base, "cardId"),
                f"operation {op_id} was for card {track[0]!r}, now {op.get('cardId')!r}", code="lifecycle.card")))
        status = details.get("status")
        index = self._order.get(status) if isinstance(status, str) else None
        if index is not None:
            if track[2 + index] is None:
                track[2 + index] = (where, base)
            if self.model.states[status].repeatable:
                problems += self._note_unstamped(track, details, where, base)
        return problems

    def _note_unstamped(self, track: list[Any], details: Mapping[str, Any], where: Hashable, base: str) -> list[tuple[Hashable, Problem]]:
        shipment = details.get("shipment")
        if isinstance(shipment, Mapping) and self.model.rules["shipmentOrderBy"] in shipment:
            return []
        body = repr(sorted(shipment.items())) if isinstance(shipment, Mapping) else repr(shipment)
        seen = track[-1] = track[-1] or set()
        seen.add(body)
        if len(seen) == 2:
            return [(where, Problem(join_pointer(base, "details", "shipment"),
                f"only the first {details['status']} notification may lack "
                f"shipment.{self.model.rules['shipmentOrderBy']}; updates cannot be ordered",
                code="lifecycle.shipmentOrder"))]
        return []

    def finish(self) -> Iterator[tuple[Hashable, Problem]]:
        """Yield the whole-set problems of every operationId seen (each reported once)."""
        for track in self._tracks.values():
            yield from self._check_track(track)
        self._tracks.clear()

    def _check_track(self, track: list[Any]) -> Iterator[tuple[Hashable, Problem]]:
        model = self.model
        seen = [(self._names[i], loc) for i, loc in enumerate(track[2:-1]) if loc is not None]
        seen.sort(key=lambda item: model.rank(item[0]))
        for (before, _), (after, (where, base)) in zip(seen, seen[1:], strict=False):
            pointer = join_pointer(base, "details", "status")
            if not model.reachable(before, after):
                yield where, Problem(pointer, f"{after} and {before} cannot both happen to one operation",
                                     code="lifecycle.impossible")
            elif not model.may_follow(before, after) and model.rules["forwardSkip"] != "ignore":
                missing = ", ".join(model.skipped(before, after)) or "intermediate states"
                yield where, Problem(pointer, f"{after} follows {before} without {missing} (forward skip)",
                                     model.rules["forwardSkip"], code="lifecycle.skip")


def check_sequence(operations: list[Mapping[str, Any]], model: Lifecycle | None = None) -> list[Problem]:
    """Check the operations of one order (any arrival order); pointers index into the list."""
    checker = SequenceChecker(model)
    found = []
    for i, op in enumerate(operations):
        found += checker.add(op, where=i, base=join_pointer("", i))
    found += list(checker.finish())
    return [problem for _, problem in found]
