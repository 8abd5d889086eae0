"""Lifecycle checks over operations: each one alone, and each operationId's set in any order.

Arrival order is not guaranteed, so the sequence check looks at *which* statuses an operation
reported, never at the order they came in: the known ones must lie on one path of the model.

Example::

    >>> from d1sim.contracts.lifecycle.sequence import SequenceChecker
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

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from hashlib import blake2b
from itertools import islice
from operator import is_not, itemgetter
from typing import Any, TypeGuard

from d1sim.contracts.lifecycle.model import Lifecycle, load_lifecycle
from d1sim.contracts.problems import Problem, join_pointer

# A known status: (slot, operation status, repeatable, endTime expected, errorCode allowed).
StateRow = tuple[int, str, bool, bool, bool]
# What SequenceChecker.examine returns and record takes: (operationId, cardId, state slot,
# unstamped-body key, where, base pointer, the operation's own problems).
Examined = tuple[Any, Any, int | None, bytes | None, Hashable, str, Sequence[Problem]]


def parse_time(value: Any) -> datetime | None:
    """Parse an ISO 8601 date-time; None when absent or unreadable (the schema reports that)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.upper())  # RFC 3339 allows a lower-case t and z
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


def _ends_after_start(op: Mapping[str, Any]) -> bool:
    """True when endTime is surely not before startTime (both present)."""
    start, end = op.get("startTime"), op.get("endTime")
    # Same-shaped UTC strings sort like the instants; anything else takes the slow path.
    return (type(end) is str and type(start) is str and len(end) == len(start)
            and end[-1:] == start[-1:] == "Z" and end >= start)


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # isinstance(x, Mapping) goes through the ABC machinery; parsed JSON is always a dict.
    return type(value) is dict or isinstance(value, Mapping)


class SequenceChecker:
    """Accumulates the PRODUCE operations of many operationIds, in any arrival order.

    ``add`` returns the per-operation problems at once; ``finish`` returns the problems of each
    operationId's whole set, paired with the ``where`` token the caller gave for the operation
    they point at (a line number, a tuple: anything hashable). Memory is one small record per
    operationId (to bound it, see ``release`` below). The hot path (a clean operation) builds no
    pointer and no Problem: captures are mostly clean.

    ``add`` is two steps, usable apart: ``examine`` (the per-operation checks; stateless, its
    result is plain values, so it may run in another process) and ``record`` (the state).

    The records may live elsewhere for a while (the caller's disk, to bound memory): ``release``
    hands over the oldest, ``adopt`` takes one back, and ``admit``, when given, is asked before
    an operationId not held here is recorded; when it answers False the caller has kept that
    operation itself (nothing is recorded, no problem returned).
    """

    def __init__(self, model: Lifecycle | None = None, admit: Callable[[Examined], bool] | None = None) -> None:
        self.model = model = model or load_lifecycle()
        self.admit = admit
        self._names = list(model.states)
        self._count = len(self._names)
        self._operation = model.operation
        self._end_when = frozenset(model.rules["endTimeWhen"])
        self._error_when = frozenset(model.rules["errorWhen"])
        # One lookup per operation: status -> (slot, the operation status it goes with,
        # repeatable, endTime expected, errorCode/error allowed).
        self._states = {name: self._state_row(i, name) for i, name in enumerate(self._names)}
        self._fields = itemgetter("operationId", "cardId", "status", "details", "operation")
        self._order_by = model.rules["shipmentOrderBy"]
        self._verdicts: dict[tuple[bool, ...], list[tuple[int, Problem]]] = {}
        # operationId -> [cardId, where per state..., base per state..., unstamped body key]
        self._tracks: dict[str, list[Any]] = {}
        self._blank = [None] * (2 * self._count + 1)

    def _state_row(self, slot: int, name: str) -> StateRow:
        state = self.model.states[name]
        status = state.operation_status
        return slot, status, state.repeatable, status in self._end_when, status in self._error_when

    def _clean(self, op: Mapping[str, Any], state: StateRow | None) -> bool:
        """True when check_operation would find nothing (decided without building pointers)."""
        op_status = op.get("status")
        if state is not None:
            if op_status != state[1]:
                return False
            end_expected, error_allowed = state[3], state[4]
        elif type(op_status) is str:
            end_expected, error_allowed = op_status in self._end_when, op_status in self._error_when
        else:
            return False
        if not error_allowed and ("errorCode" in op or "error" in op):
            return False
        return _ends_after_start(op) if end_expected else "endTime" not in op

    def add(self, op: Mapping[str, Any], where: Hashable, base: str = "") -> list[tuple[Hashable, Problem]]:
        """Record one operation located at ``where`` (``base`` is its JSON pointer)."""
        examined = self.examine(op, where, base)
        if examined is None:
            return []
        found = examined[6]
        problems = [(where, p) for p in found] if found else []
        if type(examined[0]) is str:
            more = self.record(examined)
            if more:
                problems += more
        return problems

    def examine(self, op: Mapping[str, Any], where: Hashable, base: str = "") -> Examined | None:
        """The stateless half of :meth:`add`: None for an operation the lifecycle ignores.

        Returns ``(operationId, cardId, state slot or None, unstamped-body key or None, where,
        base, problems)``: plain values, so that another process may examine and this one
        :meth:`record`.
        """
        # Captures are mostly complete, clean PRODUCE operations with a known status: fetch
        # what they all have at once, and leave anything else to the general path.
        try:
            op_id, card_id, op_status, details, operation = self._fields(op)
            state = self._states[details["status"]]
        except (KeyError, TypeError):
            return self._examine_any(op, where, base)
        if (operation != self._operation or type(details) is not dict or op_status != state[1]
                or (not state[4] and ("errorCode" in op or "error" in op))
                or not (_ends_after_start(op) if state[3] else "endTime" not in op)):
            return self._examine_any(op, where, base)
        return op_id, card_id, state[0], self._body_key(details) if state[2] else None, where, base, ()

    def _examine_any(self, op: Mapping[str, Any], where: Hashable, base: str) -> Examined | None:
        details = op.get("details")
        if op.get("operation") != self._operation or not _is_mapping(details):
            return None
        status = details.get("status")
        state = self._states.get(status) if type(status) is str else None
        found = () if self._clean(op, state) else check_operation(op, self.model, base)
        if state is None:
            return op.get("operationId"), op.get("cardId"), None, None, where, base, found
        body = self._body_key(details) if state[2] else None
        return op.get("operationId"), op.get("cardId"), state[0], body, where, base, found

    def record(self, examined: Examined) -> Sequence[tuple[Hashable, Problem]]:
        """The stateful half of :meth:`add`, on what :meth:`examine` returned for a string
        operationId (its problems are not looked at: they were the caller's to report)."""
        op_id, card_id, slot, body, where, base, _ = examined
        track = self._tracks.get(op_id)
        if track is None:
            if self.admit is not None and not self.admit(examined):
                return ()
            track = self._tracks[op_id] = [card_id, *self._blank]
            problems: Sequence[tuple[Hashable, Problem]] = ()
        elif card_id != track[0]:
            problems = [(where, Problem(join_pointer(base, "cardId"),
                f"operation {op_id} was for card {track[0]!r}, now {card_id!r}", code="lifecycle.card"))]
        else:
            problems = ()
        if slot is not None:
            if track[1 + slot] is None:
                track[1 + slot] = where
                track[1 + self._count + slot] = base
            if body is not None and track[-1] != body:
                problems = [*problems, *self._note_unstamped(track, slot, body, where, base)]
        return problems

    def _body_key(self, details: Mapping[str, Any]) -> bytes | None:
        """None when the shipment carries the ordering field, else a digest of its content."""
        shipment = details.get("shipment")
        if _is_mapping(shipment) and self._order_by in shipment:
            return None
        text = repr(sorted(shipment.items())) if _is_mapping(shipment) else repr(shipment)
        # A digest, not hash(): string hashes differ between processes, and keys may be
        # computed in worker processes and compared in this one.
        return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()

    def _note_unstamped(self, track: list[Any], slot: int, body: bytes, where: Hashable,
                        base: str) -> list[tuple[Hashable, Problem]]:
        """Only the first report of a repeatable status may lack the ordering field."""
        if track[-1] is None:
            track[-1] = body
            return []
        return [(where, Problem(join_pointer(base, "details", "shipment"),
            f"only the first {self._names[slot]} notification may lack "
            f"shipment.{self._order_by}; updates cannot be ordered",
            code="lifecycle.shipmentOrder"))]

    def __len__(self) -> int:
        """How many operationIds' records are held."""
        return len(self._tracks)

    def release(self, count: int) -> list[tuple[Any, list[Any]]]:
        """Hand over the records of the ``count`` operationIds first seen, and forget them.

        A record is a list of plain values (the cardId, the ``where`` tokens and base pointers
        given, a digest): it may be stored anywhere that keeps them, and :meth:`adopt`-ed back.
        """
        released = list(islice(self._tracks.items(), count))
        for op_id, _ in released:
            del self._tracks[op_id]
        return released

    def adopt(self, op_id: Any, track: list[Any]) -> None:
        """Hold again a record :meth:`release` handed over (it counts as seen last)."""
        self._tracks[op_id] = track

    def finish(self) -> Iterator[tuple[Hashable, Problem]]:
        """Yield the whole-set problems of every operationId seen (each reported once)."""
        for _, where, problem in self.verdicts():
            yield where, problem

    def verdicts(self) -> Iterator[tuple[int, Hashable, Problem]]:
        """:meth:`finish`, each problem with the rank of its operationId (0: the first held)."""
        count, states, nothing = self._count, slice(1, 1 + self._count), (None,) * self._count
        for rank, track in enumerate(self._tracks.values()):
            # Which states were seen, as a key: map runs in C, once per operationId.
            seen = tuple(map(is_not, track[states], nothing))
            verdict = self._verdicts.get(seen)
            if verdict is None:
                mask = sum(1 << i for i, was in enumerate(seen) if was)
                verdict = self._verdicts[seen] = list(self._judge(mask))
            for index, problem in verdict:
                pointer = join_pointer(track[1 + count + index], "details", "status")
                yield rank, track[1 + index], replace(problem, pointer=pointer)
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
