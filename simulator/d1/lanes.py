"""Ordering lanes and their timetable: which owed delivery of which issuer may go, and when.

A lane is one run's deliveries that share an ordering ``key`` (one card's, for an order): only
its head is ever in flight, so a card's notifications leave in planned order. An idle lane
waits in its issuer's :class:`Timetable` either on the issuer's virtual clock (the head's
``due``) or on real time (a retry's backoff). Entries are invalidated lazily: a lane changed
since it was filed has a new ``version``, and the old entry is skipped when it surfaces.

Example::

    >>> table = Timetable()
    >>> table.file(lane := Lane("r", "k", "ISSUER0001", 100.0, deque([_owed(1, 5.0)])), 0.0)
    >>> table.pop_ready(virtual=104.0, real=0.0, immediate=False)
    []
    >>> table.pop_ready(virtual=105.0, real=0.0, immediate=False) == [lane]
    True
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.outbox import StoredDelivery


@dataclass(eq=False)
class Lane:
    """One ordering lane of a run; ``waiting[0]`` is the head, in flight when ``busy``."""

    run_id: str
    key: str
    issuer_id: str
    start: float  # the virtual time the run's ``due`` offsets count from
    waiting: deque[StoredDelivery] = field(default_factory=deque)
    busy: bool = False
    version: int = 0

    @property
    def head(self) -> StoredDelivery:
        return self.waiting[0]

    @property
    def due_at(self) -> float:
        """The virtual time the head is due."""
        return self.start + self.head.delivery.due


Entry = tuple[float, int, int, Lane]


class Timetable:
    """One issuer's idle lanes, by the virtual time or the real retry time their head may go."""

    def __init__(self) -> None:
        self._due: list[Entry] = []
        self._retry: list[Entry] = []
        self._order = itertools.count()

    def file(self, lane: Lane, real: float) -> None:
        """File an idle lane with a head (a changed lane is filed again; old entries lapse)."""
        lane.version += 1
        retry_at = lane.head.next_attempt_at
        if retry_at is not None and retry_at > real:
            heapq.heappush(self._retry, (retry_at, next(self._order), lane.version, lane))
        else:
            heapq.heappush(self._due, (lane.due_at, next(self._order), lane.version, lane))

    @staticmethod
    def forget(lane: Lane) -> None:
        """Take a lane out (its entries lapse)."""
        lane.version += 1

    def pop_ready(self, virtual: float, real: float, immediate: bool, limit: int = 1 << 30) -> list[Lane]:
        """Up to ``limit`` lanes whose head may go now; ``immediate`` ignores the virtual due."""
        ready: list[Lane] = []
        for heap, now in ((self._retry, real), (self._due, float("inf") if immediate else virtual)):
            while heap and len(ready) < limit and heap[0][0] <= now:
                _, _, version, lane = heapq.heappop(heap)
                if _live(lane, version):
                    ready.append(lane)
        return ready

    def next_time(self, real_time_of: Callable[[float], float], immediate: bool) -> float:
        """The real time the earliest filed lane may go (infinity when none)."""
        for heap in (self._due, self._retry):
            while heap and not _live(heap[0][3], heap[0][2]):
                heapq.heappop(heap)  # drop lapsed entries so they cannot set the wake-up time
        soon = self._retry[0][0] if self._retry else float("inf")
        if self._due:
            soon = min(soon, 0.0 if immediate else real_time_of(self._due[0][0]))
        return soon


def _live(lane: Lane, version: int) -> bool:
    return version == lane.version and not lane.busy and bool(lane.waiting)


def operations_of(item: StoredDelivery) -> list[Any] | None:
    """The operations of a body that may share a POST with others; None to send it alone.

    A body a fault made or changed is sent byte for byte, as planned.
    """
    if item.delivery.fault is not None:
        return None
    try:
        body = orjson.loads(item.delivery.body)
    except orjson.JSONDecodeError:
        return None
    ops = body.get("operations") if isinstance(body, dict) else None
    return ops if isinstance(ops, list) and len(body) == 1 else None


def pack(lanes: list[Lane], max_operations: int) -> list[list[Lane]]:
    """Group ready heads into POSTs of at most ``max_operations`` operations (bulk POSTs)."""
    posts: list[list[Lane]] = []
    current: list[Lane] = []
    count = 0
    for lane in lanes:
        ops = operations_of(lane.head)
        if ops is None or len(ops) >= max_operations:
            posts.append([lane])
            continue
        if count + len(ops) > max_operations:
            posts.append(current)
            current, count = [], 0
        current.append(lane)
        count += len(ops)
    if current:
        posts.append(current)
    return posts


def merged_body(lanes: list[Lane]) -> bytes:
    """The body of one POST: a lone head's bytes as planned, else the heads' operations joined."""
    if len(lanes) == 1:
        return lanes[0].head.delivery.body
    return orjson.dumps({"operations": [op for lane in lanes for op in operations_of(lane.head) or ()]})


def _owed(seq: int, due: float) -> StoredDelivery:
    """A tiny owed delivery, for examples."""
    return StoredDelivery(seq, "r", Delivery(seq, due, b"{}", ("c",), ("S",), "x", "s", "k"))
