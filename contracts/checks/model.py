"""The values a check run is made of: what a transport answers, what a check needs, what it finds.

A transport and a state probe are protocols so that the core never talks to the network itself:
the edge (``d1sim.simulator.check.transport``) implements them over HTTP or in-process WSGI, and tests can
implement them with a dict.

Example::

    >>> reply = Reply(400, {"content-type": "application/json"}, b'{"error": "bad"}', 0.01)
    >>> reply.summary()
    '400 {"error": "bad"}'
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from d1sim.contracts.checks.ids import IdMint
from d1sim.contracts.lifecycle.settling import DEFAULT_PATIENCE, DEFAULT_SETTLE, Clock, Sleep
from d1sim.contracts.protocol import DEFAULT_ISSUER_ID

DEFAULT_MAX_BATCH = 10
DEFAULT_TIMEOUT = 10.0
EXCERPT = 300  # characters of a reply body shown in a failure

Verdict = Literal["passed", "failed", "skipped", "waived"]


@dataclass(frozen=True, slots=True)
class Reply:
    """What the receiver answered: status, headers, body and how long it took (seconds)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float

    @property
    def accepted(self) -> bool:
        """True for any 2xx: D1 counts every 2xx as delivered."""
        return 200 <= self.status < 300

    def summary(self, limit: int = EXCERPT) -> str:
        """``status body-excerpt`` on one line, the body decoded leniently, cut at ``limit``."""
        text = " ".join(self.body.decode("utf-8", "replace").split())
        if len(text) > limit:
            text = text[:limit] + f"... ({len(self.body)} bytes)"
        return f"{self.status} {text}".rstrip()


class NoReply(Exception):
    """The receiver gave no answer: timed out, refused or dropped the connection.

    Transports raise it; ``timed_out`` tells a slow receiver from an unreachable one.
    """

    def __init__(self, reason: str, *, elapsed: float = 0.0, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.elapsed, self.timed_out = reason, elapsed, timed_out


class ProbeError(Exception):
    """The state probe could not say what the receiver holds (not a 200 or a 404, not JSON)."""


class Transport(Protocol):
    """Sends one notification POST to the receiver under test."""

    def post(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """POST ``body`` with ``headers``; raise :class:`NoReply` when nothing comes back."""
        ...


# card_id -> the held state ({"cardId", "status"[, "shipment"]}) or None for an unknown card.
Probe = Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may use: how to reach the receiver and what D1 is configured with.

    Args:
        transport: sends the POSTs (``d1sim.simulator.check.transport.HttpTransport`` or ``WsgiTransport``).
        probe: reads a card's held state; None makes the state checks report *skipped*.
        auth: gives the ``Authorization`` header value D1 would send; None when the receiver is
            configured without auth (then ``rejects_missing_auth`` is skipped).
        max_batch: most operations per POST agreed at onboarding.
        timeout: seconds D1 waits for an answer.
        issuer_id: the 10-character issuer id in the webhook path (for reports).
        ids: makes the fresh card and operation ids every example is rewritten with.
        settle: seconds a state comparison polls the probe for an asynchronous receiver.
        patience: seconds one POST may be answered 429/503 (retried) before it counts as refused.
        reauthorize: after a 401 to the configured token, told the rejected header; True when a
            new token may help (OAuth2), and the POST is sent once more.
        clock, sleep: time, injected (``time.monotonic`` and ``time.sleep`` by default).
    """

    transport: Transport
    probe: Probe | None = None
    auth: Callable[[], str] | None = None
    max_batch: int = DEFAULT_MAX_BATCH
    timeout: float = DEFAULT_TIMEOUT
    issuer_id: str = DEFAULT_ISSUER_ID
    ids: IdMint = field(default_factory=IdMint)
    settle: float = DEFAULT_SETTLE
    patience: float = DEFAULT_PATIENCE
    reauthorize: Callable[[str], bool] | None = None
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep

    def __post_init__(self) -> None:
        if not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch!r}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be more than 0 seconds, got {self.timeout!r}")
        if not 0 <= self.settle < float("inf"):
            raise ValueError(f"settle must be 0 or more seconds, got {self.settle!r}")

    def close(self) -> None:
        """Close the transport and the probe where they hold connections (a ``close`` method)."""
        for part in (self.transport, self.probe):
            close = getattr(part, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> CheckContext:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request a check sent, and what came back (``reply``) or why nothing did (``error``)."""

    label: str
    body: bytes
    authorization: str
    reply: Reply | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the body parsed when it is JSON, else its text."""
        answer = self.reply.summary() if self.reply else f"no answer: {self.error}"
        return {
            "label": self.label,
            "authorization": self.authorization,
            "body": decode_body(self.body),
            "answer": answer,
        }


def decode_body(body: bytes) -> Any:
    """The parsed JSON of ``body``, or its text (undecodable bytes escaped) when not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True)
class CheckFailure:
    """A broken property as a value: which check, on what requests, what came back, what was due.

    ``exchanges`` are the requests of the (shrunk) example in the order they were sent;
    ``aborted`` is set when the run stopped at the first such example instead of shrinking it
    (no answer at all, or the state probe failed); ``replay`` says how to run exactly this again.
    """

    check_id: str
    exchanges: tuple[Exchange, ...]
    got: str
    expected: str
    replay: str = ""
    aborted: bool = False
    flaky: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for reports."""
        return {
            "check": self.check_id,
            "requests": [e.as_dict() for e in self.exchanges],
            "got": self.got,
            "expected": self.expected,
            "replay": self.replay,
            **({"aborted": True} if self.aborted else {}),
            **({"flaky": True} if self.flaky else {}),
        }


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The verdict of one check over a run: passed, failed (with its failure) or skipped."""

    check_id: str
    outcome: Verdict
    reason: str = ""
    failure: CheckFailure | None = None
    examples: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    settled_within: float | None = None  # slowest wait for the held state to match, seconds

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"
