"""Waiting for receivers built the way real ones are: asynchronous state, back-pressure.

A receiver may answer 204 at once and apply the notification from a queue moments later, and
it may answer 429 or 503 (with or without ``Retry-After``) while busy. Both are correct; a
checker must wait, within bounds, before it judges. The clock and the sleep are parameters,
so the core stays deterministic under test.

Example::

    >>> ticks = iter(range(100))
    >>> answers = iter(["stale", "stale", None])
    >>> settle(lambda: next(answers), 5.0, clock=lambda: next(ticks) / 10, sleep=lambda s: None)
    Settled(problem=None, seconds=0.3, polls=3)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_SETTLE = 5.0  # seconds a state comparison waits for an asynchronous receiver
FIRST_POLL, LONGEST_POLL = 0.02, 0.5  # the probe is read again after these pauses, growing
MAX_POLLS = 10_000  # a second bound, should a clock not move
BACKPRESSURE_STATUSES = (429, 503)
DEFAULT_PATIENCE = 30.0  # seconds one POST may be held back by 429/503 before it counts as refused
RETRY_AFTER_CAP = 5.0  # a Retry-After longer than this is shortened (a checker must finish)
FIRST_BACKOFF = 0.1

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Settled:
    """How a wait ended: ``problem`` None when the state matched, after ``seconds`` and ``polls``."""

    problem: str | None
    seconds: float
    polls: int


def settle(
    judge: Callable[[], str | None],
    within: float,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Settled:
    """Call ``judge`` (None: matched, else what differs) until it matches or ``within`` s pass.

    The last problem is returned when the deadline passes: a receiver that never converges is
    judged on the last state it held. ``within`` 0 judges once.
    """
    started, pause = clock(), FIRST_POLL
    for polls in range(1, MAX_POLLS + 1):
        problem = judge()
        elapsed = clock() - started
        if problem is None or elapsed >= within:
            return Settled(problem, round(elapsed, 3), polls)
        sleep(min(pause, within - elapsed))
        pause = min(pause * 1.5, LONGEST_POLL)
    return Settled(problem, round(clock() - started, 3), MAX_POLLS)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` value asks for (delta-seconds or HTTP-date); None if unusable.

    ``now`` is the current Unix time, to turn an HTTP-date into a delay. The one parser of the
    header: D1's sender (``d1sim.simulator.delivery.retry``) and the checker's trials use it.

    Example::

        >>> parse_retry_after("2", 0.0), parse_retry_after("soon", 0.0), parse_retry_after("nan", 0.0)
        (2.0, None, None)
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
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # "-0000" means UTC too
        moment = moment.replace(tzinfo=UTC)
    return max(moment.timestamp() - now, 0.0)


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """The seconds the ``Retry-After`` header of ``headers`` asks for, else None.

    Example::

        >>> retry_after({"Retry-After": "2"}), retry_after({"retry-after": "soon"})
        (2.0, None)
    """
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return parse_retry_after(value, (now or datetime.now(UTC)).timestamp())


def backoff(attempt: int, asked: float | None) -> float:
    """The pause before retry ``attempt`` (1, 2, ...): ``Retry-After`` up to a cap, else doubling."""
    if asked is not None:
        return min(asked, RETRY_AFTER_CAP)
    return min(FIRST_BACKOFF * 2 ** (attempt - 1), RETRY_AFTER_CAP)
