"""One example of one check: send requests, remember them, read the probe, describe a failure.

A check function receives a :class:`Trial` and the drawn example. Everything it sends goes
through the trial, so a failure can show the exact requests of the example, in order, with the
configured token replaced by a label (secrets never reach a report).

Example::

    >>> class Always204:
    ...     def post(self, body, headers):
    ...         return Reply(204, {}, b"", 0.001)
    >>> trial = Trial(CheckContext(Always204()), "accepts_valid_notification")
    >>> trial.post({"operations": []}).status, len(trial.exchanges)
    (204, 1)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from d1sim.contracts.checks.ids import fresh_notification, fresh_operations
from d1sim.contracts.checks.model import CheckContext, CheckFailure, Exchange, NoReply, ProbeError, Reply
from d1sim.contracts.lifecycle.matching import acceptable_states, compare_state
from d1sim.contracts.lifecycle.settling import BACKPRESSURE_STATUSES, backoff, retry_after, settle

ACCEPTED = "2xx (D1 counts only a 2xx as delivered, and expects 204 No Content)"
NO_PROBE_NOTE = "state not verified: no state probe configured"
# While a failure is being shrunk, a state wait lasts this many times the slowest convergence
# seen (at least SHRINK_SETTLE_FLOOR s, at most the context's settle): every shrink step of a
# receiver that never converges would otherwise cost the whole settle time.
SHRINK_SETTLE_FACTOR, SHRINK_SETTLE_FLOOR = 3.0, 0.1
MAX_HELD_BACK, SHORTEST_PAUSE = 200, 0.01  # bounds on retrying one POST answered 429/503
SHRINK_PATIENCE = 2.0  # seconds of 429/503 retries per POST while a failure is shrunk


@dataclass
class Observations:
    """What every example of one check run adds up: notes, convergence time, back-pressure."""

    notes: set[str] = field(default_factory=set)
    slowest_settle: float | None = None  # None: no state was compared
    held_back: int = 0  # answers 429/503 that were retried
    waited: float = 0.0  # seconds spent waiting on them
    refetched: int = 0  # tokens fetched again after a 401
    shrinking: bool = False

    def summary_notes(self) -> set[str]:
        """The notes, with the counted observations written out."""
        notes = set(self.notes)
        if self.held_back:
            notes.add(f"back-pressure: {self.held_back} answer(s) 429/503 retried with backoff "
                      f"({self.waited:.2f} s waited, Retry-After honoured)")
        if self.refetched:
            notes.add(f"the token was fetched again after {self.refetched} answer(s) 401")
        return notes


def encode(body: Any) -> bytes:
    """The bytes D1 would send for ``body``: compact UTF-8 JSON; bytes are sent as they are."""
    if isinstance(body, bytes):
        return body
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class Trial:
    """The requests and findings of one example of check ``check_id``.

    ``notes`` is shared by every example of one check run: observations that do not fail the
    check (a 200 where 204 is expected, state not verified) but belong in its report.
    """

    def __init__(
        self, context: CheckContext, check_id: str, observed: Observations | None = None
    ) -> None:
        self.context, self.check_id = context, check_id
        self.exchanges: list[Exchange] = []
        self.observed = observed if observed is not None else Observations()
        self.notes = self.observed.notes

    def fresh(self, body: Any) -> Any:
        """``body`` with fresh card and operation ids (see :mod:`d1sim.contracts.checks.ids`)."""
        return fresh_notification(body, self.context.ids)

    def fresh_operations(self, operations: Sequence[Any]) -> list[Any]:
        """Operations with fresh ids, equal ids staying equal across the whole list."""
        return fresh_operations(operations, self.context.ids)

    def post(
        self, body: Any, *, label: str = "notification", authorization: str | None | bool = True
    ) -> Reply:
        """POST ``body`` (JSON value, or raw bytes) and record the exchange.

        ``authorization``: True sends the configured token (if any), None or False sends no
        Authorization header, a string sends that header value as is. An answer 429 or 503 is
        retried with backoff (``Retry-After`` honoured up to a cap) within the context's
        patience, as D1 does; a 401 to the configured token is retried once with a new token.
        Raises :class:`NoReply` (also recorded) when the receiver does not answer.
        """
        raw = encode(body)
        reply = self._send(raw, label, authorization)
        waited = 0.0
        for attempt in range(1, MAX_HELD_BACK + 1):
            if reply.status not in BACKPRESSURE_STATUSES:
                break
            pause = max(backoff(attempt, retry_after(reply.headers)), SHORTEST_PAUSE)
            if waited + pause > self._patience():
                break  # never accepted within the budget: the check judges this answer
            waited += pause
            self.observed.held_back += 1
            self.observed.waited += pause
            self.context.sleep(pause)
            reply = self._send(raw, f"{label} (again after {reply.status})", authorization)
        return reply

    def _send(self, raw: bytes, label: str, authorization: str | None | bool) -> Reply:
        headers = {"Content-Type": "application/json", "x-correlation-id": f"d1sim-{self.check_id}"}
        shown = "none"
        if authorization is True and self.context.auth is not None:
            headers["Authorization"], shown = self.context.auth(), "the configured token"
        elif isinstance(authorization, str):
            headers["Authorization"] = shown = authorization
        reply = self._exchange(raw, label, headers, shown)
        if reply.status == 401 and shown == "the configured token" and self._reauthorized(headers):
            self.observed.refetched += 1  # a short-lived token lapsed: D1 refetches once
            reply = self._exchange(raw, f"{label} (new token after 401)", headers, shown)
        return reply

    def _reauthorized(self, headers: dict[str, str]) -> bool:
        """After a 401: True (and ``headers`` carry a new token) when a new token may help."""
        reauthorize, auth = self.context.reauthorize, self.context.auth
        if reauthorize is None or auth is None or not reauthorize(headers["Authorization"]):
            return False
        headers["Authorization"] = auth()
        return True

    def _exchange(self, raw: bytes, label: str, headers: dict[str, str], shown: str) -> Reply:
        try:
            reply = self.context.transport.post(raw, headers)
        except NoReply as exc:
            self.exchanges.append(Exchange(label, raw, shown, error=exc.reason))
            raise
        self.exchanges.append(Exchange(label, raw, shown, reply))
        return reply

    def accepted(self, reply: Reply) -> bool:
        """True for a 2xx; a 2xx other than 204 is noted, not failed (D1 treats it as delivered)."""
        if reply.accepted and reply.status != 204:
            self.notes.add(f"answered {reply.status} where D1 expects 204 (accepted, a warning)")
        return reply.accepted

    def held(self, card_id: str) -> Mapping[str, Any] | None:
        """What the receiver holds for ``card_id`` (None: unknown card), via the probe.

        Raises :class:`ProbeError` when there is no probe or it fails in any way.
        """
        probe = self.context.probe
        if probe is None:
            raise ProbeError("no state probe configured")
        try:
            return probe(card_id)
        except ProbeError:
            raise
        except Exception as exc:  # an integrator's probe callable may raise anything
            raise ProbeError(f"the state probe raised {type(exc).__name__}: {exc}") from exc

    def state_mismatch(self, operations: Iterable[Mapping[str, Any]]) -> str | None:
        """How the held states differ from what ``operations`` must converge to; None if alike.

        The probe is polled until every card matches or the settle time passes (an
        asynchronous receiver applies moments after its 204); the answer is then judged on the
        last state held. Without a probe: None, and the run is noted as unverified.
        """
        if self.context.probe is None:
            self.notes.add(NO_PROBE_NOTE)
            return None
        expected = acceptable_states(operations)

        def judge() -> str | None:
            for card_id, allowed in expected.items():
                problem = compare_state(allowed, self.held(card_id))
                if problem:
                    return problem
            return None

        outcome = settle(judge, self._settle_time(), clock=self.context.clock,
                         sleep=self.context.sleep)
        if outcome.problem is None:
            self.observed.slowest_settle = max(self.observed.slowest_settle or 0.0, outcome.seconds)
            return None
        return f"{outcome.problem} (still so when the settle time ran out)"

    def _patience(self) -> float:
        # Shrinking a failure: a receiver that keeps answering 429/503 gets a short budget.
        patience = self.context.patience
        return min(patience, SHRINK_PATIENCE) if self.observed.shrinking else patience

    def _settle_time(self) -> float:
        limit = self.context.settle
        if not self.observed.shrinking:
            return limit
        slowest = self.observed.slowest_settle or 0.0
        quick = max(SHRINK_SETTLE_FLOOR, SHRINK_SETTLE_FACTOR * slowest)
        return min(limit, quick)

    def applied_any(self, card_ids: Iterable[str]) -> str | None:
        """Which of ``card_ids`` the receiver holds a state for (it should know none of them)."""
        if self.context.probe is None:
            self.notes.add(NO_PROBE_NOTE)
            return None
        for card_id in card_ids:
            held = self.held(card_id)
            if held is not None:
                return f"card {card_id} was applied anyway: the receiver holds {dict(held)}"
        return None

    def fail(self, got: Reply | str, expected: str) -> CheckFailure:
        """The failure of this example: its requests so far, what came back, what was due."""
        text = got.summary() if isinstance(got, Reply) else got
        return CheckFailure(self.check_id, tuple(self.exchanges), text, expected)

    def unanswered(self, error: NoReply | ProbeError) -> CheckFailure:
        """The failure of an example that could not be judged: no answer, or no usable probe."""
        if isinstance(error, NoReply):
            got = f"no answer: {error.reason}"
            expected = f"an answer within {self.context.timeout:g} s (see responds_in_time)"
        else:
            got, expected = f"the state probe failed: {error}", "a working state probe"
        return CheckFailure(self.check_id, tuple(self.exchanges), got, expected, aborted=True)


def one_per_post(operations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A notification per operation, the way D1 sends one card's status changes over time."""
    return [{"operations": [dict(op)]} for op in operations]
