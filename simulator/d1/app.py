"""The mock D1 server: one object owning the store, outbox, issuers, planner and dispatcher,
and the Flask app that exposes it (inbound API under ``/banking/v1``, admin API under ``/_sim``).

Example::

    server = D1Server(ServerSettings(db_path="d1.db"))
    with server.running():
        with running_server(create_app(server)) as url:
            ...  # register an issuer at url + "/_sim/issuers/ISSUER0001", order cards
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from d1sim.simulator.d1.config import IssuerSettings, ServerSettings
from d1sim.simulator.d1.dispatcher import Dispatcher
from d1sim.simulator.d1.issuers import Issuers
from d1sim.simulator.d1.planner import Planner
from d1sim.simulator.d1.server_outbox import ServerOutbox
from d1sim.simulator.d1.store import Store, digest

log = logging.getLogger("d1sim.serve")
BANKING = "/banking/v1"
ADMIN = "/_sim"


class D1Server:
    """Everything ``d1sim serve`` runs, minus the HTTP listener; ``start``/``stop`` its threads."""

    def __init__(self, settings: ServerSettings, issuers: Iterable[Mapping[str, Any]] = ()) -> None:
        self.settings = settings
        self.outbox = ServerOutbox(settings.db_path)
        self.store = Store(settings.db_path)
        self.issuers = Issuers(self.store)
        self.dispatcher = Dispatcher(self.outbox, self.store, self.issuers, workers=settings.workers)
        self.planner = Planner(
            self.outbox,
            self.store,
            self._max_operations,
            self._target,
            self.dispatcher.reload,
            workers=settings.plan_workers,
        )
        self._tokens: dict[str, tuple[str, float]] = {}  # token hash -> (issuer id, expiry)
        self._token_lock = threading.Lock()
        for raw in issuers:
            self.register(raw)

    def _max_operations(self, issuer_id: str) -> int:
        settings = self.issuers.get(issuer_id)
        return settings.max_operations if settings else 10

    def _target(self, issuer_id: str) -> str:
        settings = self.issuers.get(issuer_id)
        return settings.target if settings else "?"

    def start(self) -> None:
        """Resume every unfinished lifecycle and start planning and sending."""
        self.dispatcher.start()
        self.planner.start()

    def stop(self) -> None:
        """Stop planning and sending (what is owed stays owed), then close the database."""
        self.planner.stop()
        self.dispatcher.stop()
        self.store.close()
        self.outbox.close()

    @contextmanager
    def running(self) -> Iterator[D1Server]:
        """``start`` for the ``with`` block, ``stop`` after it."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def register(self, raw: Mapping[str, Any]) -> tuple[IssuerSettings, bool]:
        """Register or update an issuer (and its inbound ``clients``); True when new."""
        settings, created = self.issuers.put(raw)
        for client in raw.get("clients") or ():
            self.store.add_client(settings.issuer_id, client["clientId"], client["clientSecret"])
        self.dispatcher.wake()
        return settings, created

    def issue_token(self, issuer_id: str, scope: str = "") -> dict[str, str]:
        """A bearer token for the inbound API, in D1's token-response shape."""
        token, now = secrets.token_urlsafe(32), time.time()
        expires = now + self.settings.token_ttl
        self.store.add_token(token, issuer_id, expires)
        with self._token_lock:
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
            self._tokens[digest(token)] = (issuer_id, expires)
        at = datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": str(int(self.settings.token_ttl)),
            "scope": scope,
            "expires_at": at.replace("+00:00", "Z"),
        }

    def token_issuer(self, token: str) -> str | None:
        """The issuer a valid, unexpired token was issued to (tokens survive a restart)."""
        with self._token_lock:
            known = self._tokens.get(digest(token))
        if known is None:
            known = self.store.token(token)
        return known[0] if known and known[1] > time.time() else None


def json_response(body: Any, status: int = 200, mimetype: str = "application/json") -> Response:
    """A JSON answer (orjson)."""
    return Response(orjson.dumps(body), status, mimetype=mimetype)


def problem(status: int, title: str, detail: str, slug: str | None = None) -> Response:
    """An RFC 9457 problem answer (the admin API's errors)."""
    slug = slug or title.lower().replace(" ", "-")
    body = {
        "type": f"https://d1sim.dev/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    return json_response(body, status, "application/problem+json")


def d1_error(status: int, code: str, error: str, message: str | None = None) -> Response:
    """An inbound API error in D1's shape (``message`` is d1sim's extra for humans)."""
    body = {"errorCode": code, "error": error, **({"message": message} if message else {})}
    return json_response(body, status)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if request.path.startswith(BANKING):
        code = {
            401: "AUTHORIZER_UNAUTHORIZED",
            404: "RESOURCE_NOT_FOUND",
            413: "PAYLOAD_TOO_LARGE",
        }.get(status, "REQUEST_REJECTED")
        return d1_error(status, code, exc.name, exc.description)
    return problem(status, exc.name, exc.description or exc.name)


def _unexpected(exc: Exception) -> Response:
    # A bug: log it here, and answer without a traceback (or anything from the request).
    log.exception("unexpected error on %s %s", request.method, request.path)
    if request.path.startswith(BANKING):
        return d1_error(500, "INTERNAL_ERROR", "unexpected error; see the server log")
    return problem(500, "Internal error", "unexpected error; see the server log")


def _openapi() -> Response:
    """``GET /openapi.json``: the OpenAPI document of everything this server answers."""
    from d1sim.contracts.openapi.documents import build_openapi

    return json_response(build_openapi(server_paths=True))


def create_app(server: D1Server) -> Flask:
    """The Flask app of ``server``: inbound API, admin API, D1/problem-shaped errors."""
    from d1sim.simulator.d1.admin import add_admin_routes
    from d1sim.simulator.d1.inbound import add_inbound_routes

    app = Flask("d1sim.serve")
    app.config["MAX_CONTENT_LENGTH"] = server.settings.batch_limit
    app.extensions["d1sim.server"] = server
    add_inbound_routes(app, server)
    add_admin_routes(app, server)
    app.add_url_rule("/openapi.json", view_func=_openapi, methods=["GET"])
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app
