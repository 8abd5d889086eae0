"""The reference receiver: a small, conforming D1 PRODUCE webhook endpoint (Flask).

It is the example integrators read. What it does for every notification, in order:

1. ``issuerId`` must be 10 characters (else 404); the failure knobs may answer first (tests).
2. With auth configured, ``Authorization: Bearer <token>`` must be valid and unexpired (else 401).
3. The body must be JSON (else 400) and valid against the forward-compatible schema (else 400
   with the problems) -- never a 5xx, which would make D1 retry for ever.
4. Every operation is recorded; an exact duplicate changes nothing; per card the operation with
   the greatest :func:`d1sim.contracts.lifecycle.convergence.order_key` is held. Unknown ``details.status``
   values are accepted and recorded but never held (they cannot be ranked), so they never
   block later known statuses. Answer 204.

``GET /cards/<cardId>`` is the state probe of docs/d1-produce.md section 7: 200 with the held state,
or 404 when no *known* status was received for the card (also when only unknown ones were).
The control routes (``/_receiver/stats``, ``/_receiver/reset``) take the same token as the
webhook when auth is configured, and refuse writes from other origins (:mod:`.control`).

Example::

    >>> app = create_app(ReceiverConfig(bearer_token="s3cret"))
    >>> app.test_client().get("/cards/c1").status_code
    404
"""

from __future__ import annotations

import hmac
import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from d1sim.contracts.notification.validation import validate_notification
from d1sim.contracts.protocol import webhook_path
from d1sim.simulator.receiver.control import add_control_routes
from d1sim.simulator.receiver.store import ReceiverStore
from d1sim.simulator.web.origins import OriginGuard

WEBHOOK_PATH = webhook_path("<issuer_id>")  # as a Flask route
TOKEN_PATH = "/authz/d1/v1/oauth2/token"
PROBE_PATH = "/cards/<card_id>"
ISSUER_ID_LENGTH = 10
MAX_BODY_BYTES = 16 * 1024 * 1024


class ConfigError(ValueError):
    """A receiver setting is out of range; ``setting`` names the ReceiverConfig field."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting} {reason}")
        self.setting, self.reason = setting, reason


# (setting, test, rule): the ranges ReceiverConfig accepts.
RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("fail_status", lambda v: 400 <= v <= 599, "must be an HTTP error status (400-599)"),
    ("fault_status", lambda v: 400 <= v <= 599, "must be an HTTP error status (400-599)"),
    ("fail_first", lambda v: v >= 0, "must be 0 or more"),
    ("latency", lambda v: math.isfinite(v) and v >= 0, "must be 0 or more seconds"),
    ("fault_rate", lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    ("token_ttl", lambda v: math.isfinite(v) and v > 0, "must be more than 0 seconds"),
    ("bearer_token", lambda v: v != "", "must not be empty"),
)


@dataclass(frozen=True)
class ReceiverConfig:
    """How the reference receiver behaves; every field has a safe default (no auth, no faults).

    Setting ``bearer_token`` or ``client_id``/``client_secret`` turns authentication on; both
    may be set, and either kind of token is then accepted. The knobs (``fail_first``,
    ``latency``, ``fault_rate``) apply to the notification endpoint only.
    """

    db_path: str = ":memory:"
    bearer_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    token_ttl: float = 900.0
    fail_first: int = 0
    fail_status: int = 503
    latency: float = 0.0
    fault_rate: float = 0.0
    fault_status: int = 500
    seed: int | None = None
    host: str = "127.0.0.1"  # the bound address: control writes must name it (or loopback, an IP)
    public_host: str | None = None  # the name clients reach the receiver by, behind a proxy
    clock: Callable[[], float] = field(default=time.time, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        for name, ok, rule in RULES:
            value = getattr(self, name)
            if not ok(value):
                raise ConfigError(name, f"{rule}, got {value!r}")
        if bool(self.client_id) != bool(self.client_secret):
            raise ConfigError("client_id", "and client secret must be given together")

    @property
    def oauth(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def auth_required(self) -> bool:
        return bool(self.bearer_token) or self.oauth


class TokenIssuer:
    """OAuth2 client-credentials tokens: random strings with an expiry read from ``clock``."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl, self._clock = ttl, clock
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, scope: str) -> dict[str, str]:
        """A token response in D1's shape (``expires_in`` is a string, as in D1's example)."""
        token, now = secrets.token_urlsafe(32), self._clock()
        with self._lock:
            # Forget expired tokens so a long demo run does not grow the table.
            self._expiry = {t: at for t, at in self._expiry.items() if at > now}
            self._expiry[token] = now + self._ttl
        expiry = datetime.fromtimestamp(now + self._ttl, UTC).isoformat(timespec="seconds")
        expires_at = expiry.replace("+00:00", "Z")
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": str(int(self._ttl)),
            "scope": scope,
            "expires_at": expires_at,
        }

    def is_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._expiry.get(token)
        return expiry is not None and self._clock() < expiry


class FaultKnobs:
    """Decide which notification calls fail: the first ``fail_first``, then a seeded fraction."""

    def __init__(self, config: ReceiverConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start counting again and re-seed, so a demo run after a reset replays the same faults."""
        with self._lock:
            self._calls = 0
            self._random = random.Random(self._config.seed)

    def status_for_next_call(self) -> int | None:
        """The error status to answer this call with, or None to serve it normally."""
        config = self._config
        with self._lock:
            self._calls += 1
            if self._calls <= config.fail_first:
                return config.fail_status
            if config.fault_rate and self._random.random() < config.fault_rate:
                return config.fault_status
        return None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, mimetype="application/json")


def _error(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return _json({"error": message, **extra}, status, headers)


class Receiver:
    """The view functions, sharing one store, one token issuer and one set of knobs."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        self.store = ReceiverStore(config.db_path)
        self.tokens = TokenIssuer(config.token_ttl, config.clock)
        self.knobs = FaultKnobs(config)

    def notify(self, issuer_id: str) -> Response:
        """``POST /notifications/d1/v2/issuers/<issuerId>/cards``: apply a notification."""
        self.store.count("posts")
        if len(issuer_id) != ISSUER_ID_LENGTH:
            return self._reject(
                404, f"issuerId must be {ISSUER_ID_LENGTH} characters, got {len(issuer_id)}"
            )
        if self.config.latency:
            self.config.sleep(self.config.latency)
        fault = self.knobs.status_for_next_call()
        if fault is not None:
            self.store.count("faulted")
            return _error(fault, "failure injected by the receiver's knobs")
        if not self.authorized():
            self.store.count("rejected")
            return self.unauthorized()
        return self._apply(request.get_data())

    def _apply(self, raw: bytes) -> Response:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return self._reject(400, f"body is not JSON: {exc}")
        problems = validate_notification(body)
        if problems:
            return self._reject(
                400, "invalid notification", problems=[p.as_dict() for p in problems]
            )
        self.store.apply(body["operations"])
        return Response(status=204)

    def _reject(
        self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> Response:
        self.store.count("rejected")
        return _error(status, message, headers, **extra)

    def refusal(self) -> Response | None:
        """The 401 a call without the receiver's credentials gets, or None."""
        return None if self.authorized() else self.unauthorized()

    def reset(self) -> None:
        """Forget cards, operations and counters; restart the knobs."""
        self.store.reset()
        self.knobs.reset()

    @staticmethod
    def unauthorized() -> Response:
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        return _error(401, "missing, wrong or expired bearer token", challenge)

    def authorized(self) -> bool:
        if not self.config.auth_required:
            return True
        auth = request.authorization
        if auth is None or auth.type != "bearer" or not auth.token:
            return False
        static = self.config.bearer_token
        if static and hmac.compare_digest(auth.token.encode(), static.encode()):
            return True
        return self.config.oauth and self.tokens.is_valid(auth.token)

    def token(self) -> Response:
        """``POST /authz/d1/v1/oauth2/token``: client-credentials grant with HTTP Basic auth."""
        if not self.config.oauth:
            return _error(
                404, "OAuth2 is not configured on this receiver (set client id and secret)"
            )
        auth = request.authorization
        given = f"{auth.username}:{auth.password}" if auth and auth.type == "basic" else ""
        expected = f"{self.config.client_id}:{self.config.client_secret}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(401, "invalid_client", {"WWW-Authenticate": 'Basic realm="d1sim"'})
        if request.form.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type")
        return _json(
            self.tokens.issue(request.form.get("scope", "")), 200, {"Cache-Control": "no-store"}
        )

    def probe(self, card_id: str) -> Response:
        """``GET /cards/<cardId>``: the held state, or 404 when no known status was received."""
        held = self.store.probe(card_id)
        if held is not None:
            return _json(held)
        seen = self.store.statuses_seen(card_id)
        if seen:
            return _error(
                404,
                f"card {card_id} has only unknown statuses, which are never held",
                cardId=card_id,
                received=seen,
            )
        return _error(404, f"unknown card {card_id}", cardId=card_id)


def create_app(config: ReceiverConfig | None = None) -> Flask:
    """Build the reference receiver as a Flask (WSGI) app.

    Args:
        config: behaviour and knobs; default: in-memory state, no auth, no faults.
    Returns:
        The app; ``app.extensions["d1sim.receiver"]`` is the :class:`Receiver` (store, knobs).
    Raises:
        sqlite3.Error: the database file cannot be opened.

    Example: ``waitress.serve(create_app(ReceiverConfig(bearer_token="t")), port=8090)``.
    """
    receiver = Receiver(config or ReceiverConfig())
    app = Flask("d1sim.receiver")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["d1sim.receiver"] = receiver
    app.add_url_rule(WEBHOOK_PATH, view_func=receiver.notify, methods=["POST"])
    app.add_url_rule(TOKEN_PATH, view_func=receiver.token, methods=["POST"])
    app.add_url_rule(PROBE_PATH, view_func=receiver.probe, methods=["GET"])
    guard = OriginGuard(receiver.config.host, receiver.config.public_host)
    add_control_routes(app, guard, receiver.refusal, receiver.store.stats, receiver.reset)
    # Every error a client can see is JSON, including Flask's own 404/405/413.
    app.register_error_handler(
        HTTPException, lambda exc: _error(exc.code or 500, exc.description or exc.name)
    )
    return app


@contextmanager
def running_receiver(config: ReceiverConfig | None = None) -> Iterator[str]:
    """Serve a reference receiver on 127.0.0.1 (a free port) while in the block; yields its URL."""
    from d1sim.simulator.web.servers import running_server  # the app itself needs no server

    app = create_app(config)
    try:
        with running_server(app) as url:
            yield url
    finally:
        app.extensions["d1sim.receiver"].store.close()
