"""D1's retry rules: what an answer means, how long to wait, and which delivery may go next.

The classification follows the reference (d1-produce.md section 2): any 2xx is delivered (a
non-204 2xx with a warning); 408, 429, 5xx and transport failures are retried; any other status
is a permanent failure. Waiting is exponential backoff with full jitter, or ``Retry-After``.

Example::

    >>> import random
    >>> from d1sim.simulator.delivery.retry import RetryPolicy, classify
    >>> classify(503), classify(404), classify(None)
    (<Outcome.RETRY: 'retry'>, <Outcome.PERMANENT: 'permanent'>, <Outcome.RETRY: 'retry'>)
    >>> 0 <= RetryPolicy().delay(3, random.Random(1)) <= 4
    True
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from d1sim.simulator.errors import UsageError

if TYPE_CHECKING:
    from d1sim.simulator.delivery.outbox import StoredDelivery


class Outcome(StrEnum):
    """What one attempt's answer means for its delivery."""

    DELIVERED = "delivered"
    WARNING = "warning"  # delivered, but not with the 204 the spec promises
    RETRY = "retry"
    PERMANENT = "permanent"


# Statuses outside 5xx that D1 still retries (the receiver asked to come back later).
RETRYABLE_STATUSES = frozenset({408, 429})
SUCCESS_STATUS = 204


def classify(status_code: int | None) -> Outcome:
    """Classify an HTTP status; ``None`` stands for a timeout or a connection error."""
    if status_code is None or status_code in RETRYABLE_STATUSES or 500 <= status_code <= 599:
        return Outcome.RETRY
    if 200 <= status_code <= 299:
        return Outcome.DELIVERED if status_code == SUCCESS_STATUS else Outcome.WARNING
    return Outcome.PERMANENT


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a delivery is retried (times in seconds)."""

    max_attempts: int = 8
    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    # A receiver's Retry-After is honoured, but a huge one must not park a run for days.
    max_retry_after: float = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise UsageError(f"max attempts must be at least 1, not {self.max_attempts}")
        if self.base < 0 or self.factor < 1 or self.cap < 0 or self.max_retry_after < 0:
            raise UsageError("backoff base, cap and Retry-After limit must be >= 0, factor >= 1")

    def gives_up(self, attempts: int) -> bool:
        """True once ``attempts`` tries have used up the budget."""
        return attempts >= self.max_attempts

    def ceiling(self, failed: int) -> float:
        """The upper bound of the jittered wait after the ``failed``-th failed attempt."""
        return min(self.cap, self.base * self.factor ** max(failed - 1, 0))

    def delay(self, failed: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failed`` failed tries: Retry-After if given, else full jitter."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return rng.uniform(0.0, self.ceiling(failed))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds asked by a ``Retry-After`` header (delta seconds or HTTP date); None if unusable.

    ``now`` is the current Unix time, used to turn an HTTP date into a delay.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class Schedule:
    """Which owed delivery may go next: one per key at a time, in order, each at its ready time.

    A key's first held delivery is its head, the only one timed (in a heap) or in flight; the
    others wait behind it in a FIFO and follow when the head is settled (delivered or dead).
    ``ready_at`` gives a newly timed delivery's ready time on the scheduler's clock.
    """

    def __init__(self, ready_at: Callable[[StoredDelivery], float]) -> None:
        self._ready_at = ready_at
        self._heap: list[tuple[float, float, int, int, StoredDelivery]] = []
        self._queues: dict[str, deque[StoredDelivery]] = {}
        self.held = 0  # deliveries taken from the outbox and not settled yet

    def add(self, item: StoredDelivery) -> None:
        """Take an owed delivery; it is timed now if its key has no head, else queued."""
        self.held += 1
        waiting = self._queues.get(item.delivery.key)
        if waiting is None:
            self._queues[item.delivery.key] = deque()
            self._push(item, self._ready_at(item))
        else:
            waiting.append(item)

    def retry(self, item: StoredDelivery, at: float) -> None:
        """Time a head again after a failed attempt; its key stays blocked until then."""
        self._push(item, at)

    def settle(self, item: StoredDelivery) -> None:
        """Forget a settled head and time the next delivery of its key, if any."""
        self.held -= 1
        waiting = self._queues[item.delivery.key]
        if waiting:
            follower = waiting.popleft()
            self._push(follower, self._ready_at(follower))
        else:
            del self._queues[item.delivery.key]

    def next_time(self) -> float | None:
        """When the earliest timed head becomes ready; None when nothing is timed."""
        return self._heap[0][0] if self._heap else None

    def pop_ready(self, now: float) -> StoredDelivery | None:
        """The ready head with the earliest (ready time, due, seq), or None."""
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)[-1]
        return None

    def _push(self, item: StoredDelivery, at: float) -> None:
        # The outbox id breaks ties, so two entries never compare their deliveries.
        heapq.heappush(self._heap, (at, item.delivery.due, item.delivery.seq, item.id, item))
