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
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeGuard

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
    if model.end_time_expected(op_status) and "endTime" not in op:
        return [Problem(join_pointer(base, "endTime"), f"endTime is missing on a {op_status} operation",
                        code="lifecycle.endTime")]
    if not model.end_time_expected(op_status) and "endTime" in op:
        return [Problem(join_pointer(base, "endTime"),
                        f"endTime must not be present while the operation is {op_status}", code="lifecycle.endTime")]
    start, end = parse_time(op.get("startTime")), parse_time(op.get("endTime"))
    if start and end and start.tzinfo and end.tzinfo and end < start:
        return [Problem(join_pointer(base, "endTime"), "endTime is before startTime", "warning",
                        code="lifecycle.endTime")]
    return []


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # isinstance(x, Mapping) goes through the ABC machinery; parsed JSON is always a dict.
    return type(value) is dict or isinstance(value, Mapping)


class SequenceChecker:
    """Accumulates the PRODUCE operations of many operationIds, in any arrival order.

    ``add`` returns the per-operation problems at once; ``finish`` returns the problems of each
    operationId's whole set, paired with the ``where`` token the caller gave for the operation
    they point at (a line number, a tuple: anything hashable). Memory is one small record per
    operationId, so arbitrarily long captures stream. The hot path (a clean operation) builds no
    pointer and no Problem: captures are mostly clean.
    """

    def __init__(self, model: Lifecycle | None = None) -> None:
        self.model = model = model or load_lifecycle()
        self._names = list(model.states)
        self._slot = {name: i for i, name in enumerate(self._names)}
        self._count = len(self._names)
        self._expected = {name: s.operation_status for name, s in model.states.items()}
        self._repeatable = frozenset(n for n, s in model.states.items() if s.repeatable)
        self._end_when = frozenset(model.rules["endTimeWhen"])
        self._error_when = frozenset(model.rules["errorWhen"])
        self._order_by = model.rules["shipmentOrderBy"]
        self._verdicts: dict[int, list[tuple[int, Problem]]] = {}
        # operationId -> [cardId, where per state..., base per state..., unstamped body hash]
        self._tracks: dict[str, list[Any]] = {}

    def _clean(self, op: Mapping[str, Any], status: Any) -> bool:
        """True when check_operation would find nothing (decided without building pointers)."""
        op_status = op.get("status")
        if type(op_status) is not str:
            return False
        expected = self._expected.get(status) if type(status) is str else None
        if expected is not None and expected != op_status:
            return False
        if op_status not in self._error_when and ("errorCode" in op or "error" in op):
            return False
        if op_status not in self._end_when:
            return "endTime" not in op
        start, end = op.get("startTime"), op.get("endTime")
        # Same-shaped UTC strings sort like the instants; anything else takes the slow path.
        return (type(end) is str and type(start) is str and len(end) == len(start)
                and end[-1:] == start[-1:] == "Z" and end >= start)

    def add(self, op: Mapping[str, Any], where: Hashable, base: str = "") -> list[tuple[Hashable, Problem]]:
        """Record one operation located at ``where`` (``base`` is its JSON pointer)."""
        details = op.get("details")
        if op.get("operation") != self.model.operation or not _is_mapping(details):
            return []
        status = details.get("status")
        problems = [] if self._clean(op, status) else [(where, p) for p in check_operation(op, self.model, base)]
        op_id = op.get("operationId")
        if type(op_id) is not str:
            return problems
        track = self._tracks.get(op_id)
        if track is None:
            track = self._tracks[op_id] = [op.get("cardId"), *([None] * (2 * self._count + 1))]
        elif op.get("cardId") != track[0]:
            problems.append((where, Problem(join_pointer(base, "cardId"),
                f"operation {op_id} was for card {track[0]!r}, now {op.get('cardId')!r}", code="lifecycle.card")))
        index = self._slot.get(status) if type(status) is str else None
        if index is not None:
            if track[1 + index] is None:
                track[1 + index] = where
                track[1 + self._count + index] = base
            if status in self._repeatable:
                problems += self._note_unstamped(track, details, where, base)
        return problems

    def _note_unstamped(self, track: list[Any], details: Mapping[str, Any], where: Hashable,
                        base: str) -> list[tuple[Hashable, Problem]]:
        """Only the first report of a repeatable status may lack the ordering field."""
        shipment = details.get("shipment")
        if _is_mapping(shipment) and self._order_by in shipment:
            return []
        body = hash(repr(sorted(shipment.items())) if _is_mapping(shipment) else repr(shipment))
        if track[-1] is None:
            track[-1] = body
        elif track[-1] != body:
            return [(where, Problem(join_pointer(base, "details", "shipment"),
                f"only the first {details['status']} notification may lack "
                f"shipment.{self._order_by}; updates cannot be ordered",
                code="lifecycle.shipmentOrder"))]
        return []

    def finish(self) -> Iterator[tuple[Hashable, Problem]]:
        """Yield the whole-set problems of every operationId seen (each reported once)."""
        count = self._count
        for track in self._tracks.values():
            mask = 0
            for i in range(count):
                if track[1 + i] is not None:
                    mask |= 1 << i
            verdict = self._verdicts.get(mask)
            if verdict is None:
                verdict = self._verdicts[mask] = list(self._judge(mask))
            for index, problem in verdict:
                pointer = join_pointer(track[1 + count + index], "details", "status")
                yield track[1 + index], replace(problem, pointer=pointer)
        self._tracks.clear()

    def _judge(self, mask: int) -> Iterator[tuple[int, Problem]]:
        """The problems of one set of seen states, by the index of the state they point at."""
        model = self.model
        seen = [i for i in range(self._count) if mask >> i & 1]
        seen.sort(key=lambda i: model.rank(self._names[i]))
        for b, a in zip(seen, seen[1:], strict=False):
            before, after = self._names[b], self._names[a]
            if not model.reachable(before, after):
                yield a, Problem("", f"{after} and {before} cannot both happen to one operation",
                                 code="lifecycle.impossible")
            elif not model.may_follow(before, after) and model.rules["forwardSkip"] != "ignore":
                missing = ", ".join(model.skipped(before, after)) or "intermediate states"
                yield a, Problem("", f"{after} follows {before} without {missing} (forward skip)",
                                 model.rules["forwardSkip"], code="lifecycle.skip")


def check_sequence(operations: list[Mapping[str, Any]], model: Lifecycle | None = None) -> list[Problem]:
    """Check the operations of one order (any arrival order); pointers index into the list."""
    checker = SequenceChecker(model)
    found = []
    for i, op in enumerate(operations):
        found += checker.add(op, where=i, base=join_pointer("", i))
    found += list(checker.finish())
    return [problem for _, problem in found]
