"""D1's retry rules: what an answer means, how long to wait, and which delivery may go next.

The classification follows the reference (docs/d1-produce.md section 2): any 2xx is delivered (a
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
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from d1sim.contracts.lifecycle.settling import parse_retry_after  # the one Retry-After parser
from d1sim.simulator.errors import UsageError

if TYPE_CHECKING:
    from d1sim.simulator.delivery.outbox import Attempt, StoredDelivery


class Outcome(StrEnum):
    """What one attempt's answer means for its delivery."""

    DELIVERED = "delivered"
    WARNING = "warning"  # delivered, but not with the 204 the spec promises
    RETRY = "retry"
    PERMANENT = "permanent"


# Statuses outside 5xx that D1 still retries (the receiver asked to come back later).
RETRYABLE_STATUSES = frozenset({408, 429})
# Bounds of a retry policy: beyond them a run would wait for days or a backoff would overflow.
MAX_ATTEMPTS, MAX_FACTOR, MAX_WAIT = 1000, 100.0, 86400.0
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
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            raise UsageError(f"max attempts must be between 1 and {MAX_ATTEMPTS}, not {self.max_attempts}")
        waits = {"backoff base": self.base, "backoff cap": self.cap, "Retry-After limit": self.max_retry_after}
        for name, value in waits.items():
            if not (math.isfinite(value) and 0 <= value <= MAX_WAIT):
                raise UsageError(f"{name} must be between 0 and {MAX_WAIT:g} s, not {value}")
        if not (math.isfinite(self.factor) and 1 <= self.factor <= MAX_FACTOR):
            raise UsageError(f"backoff factor must be between 1 and {MAX_FACTOR:g}, not {self.factor}")

    def gives_up(self, attempts: int) -> bool:
        """True once ``attempts`` tries have used up the budget."""
        return attempts >= self.max_attempts

    def ceiling(self, failed: int) -> float:
        """The upper bound of the jittered wait after the ``failed``-th failed attempt."""
        try:
            return min(self.cap, self.base * self.factor ** max(failed - 1, 0))
        except OverflowError:  # factor ** n beyond a float: far past the cap anyway
            return self.cap

    def delay(self, failed: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failed`` failed tries: Retry-After if given, else full jitter."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return rng.uniform(0.0, self.ceiling(failed))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What D1 does after one answer: the delivery's new state, the attempt as recorded (with
    a warning for a non-204 2xx) and, while ``pending``, the seconds until the next try."""

    state: str  # pending, delivered or dead
    attempt: Attempt
    delay: float | None = None


def judge(
    attempt: Attempt,
    retry_after: str | None,
    tried: int,
    policy: RetryPolicy,
    rng: random.Random,
    now: float,
) -> Verdict:
    """D1's rule for one answer, the only copy of it: classify, then retry, deliver or give up.

    ``tried`` counts the attempts before this one; ``now`` is the Unix time (it turns an HTTP
    date in ``Retry-After`` into a delay).
    """
    outcome = classify(attempt.status_code)
    if outcome is Outcome.WARNING and attempt.warning is None:
        attempt = replace(attempt, warning=f"answered {attempt.status_code}, not {SUCCESS_STATUS}")
    if outcome is Outcome.RETRY and not policy.gives_up(tried + 1):
        asked = parse_retry_after(retry_after, now)
        return Verdict("pending", attempt, policy.delay(tried + 1, rng, asked))
    delivered = outcome in (Outcome.DELIVERED, Outcome.WARNING)
    return Verdict("delivered" if delivered else "dead", attempt)


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
