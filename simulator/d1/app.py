"""The mock D1's Flask app: a :class:`D1Server` behind its inbound API (``/banking/v1``), its admin
API (``/_sim``) and ``/openapi.json``, with D1-shaped or problem-document errors.

Example::

    server = D1Server(ServerSettings(db_path="d1.db"))
    with server.running():
        with running_server(create_app(server)) as url:
            ...  # register an issuer at url + "/_sim/issuers/ISSUER0001", order cards
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from d1sim.contracts.openapi.documents import build_openapi
from d1sim.simulator.d1.admin import add_admin_routes
from d1sim.simulator.d1.admin_runs import add_run_routes
from d1sim.simulator.d1.inbound import add_inbound_routes
from d1sim.simulator.d1.responses import ADMIN, BANKING, d1_error, json_response, problem
from d1sim.simulator.d1.server import D1Server
from d1sim.simulator.ui import add_ui, admin_caller

# D1Server and the response helpers are imported from here by callers written before the split.
__all__ = ["ADMIN", "BANKING", "D1Server", "create_app", "d1_error", "json_response", "problem"]

log = logging.getLogger("d1sim.serve")


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if request.path.startswith(BANKING):
        code = {
            401: "AUTHORIZER_UNAUTHORIZED",
            404: "RESOURCE_NOT_FOUND",
            413: "PAYLOAD_TOO_LARGE",
        }.get(status, "REQUEST_REJECTED")
        answer = d1_error(status, code, exc.name, exc.description)
    else:
        answer = problem(status, exc.name, exc.description or exc.name)
    # Keep what the error says beyond its body: Allow on a 405 (RFC 9110 requires it).
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            answer.headers[name] = value
    return answer


def _unexpected(exc: Exception) -> Response:
    # A bug: log it here, and answer without a traceback (or anything from the request).
    log.exception("unexpected error on %s %s", request.method, request.path)
    if request.path.startswith(BANKING):
        return d1_error(500, "INTERNAL_ERROR", "unexpected error; see the server log")
    return problem(500, "Internal error", "unexpected error; see the server log")


def _openapi() -> Response:
    """``GET /openapi.json``: the OpenAPI document of everything this server answers."""
    return json_response(build_openapi(server_paths=True))


def _add_ui(app: Flask, server: D1Server) -> None:
    """The inspection UI at ``/``, guarded by the admin token, acting through the admin API."""
    token = server.settings.admin_token
    add_ui(app, server.settings.db_path, token=token, admin=admin_caller(app, ADMIN, token))


def create_app(server: D1Server) -> Flask:
    """The Flask app of ``server``: inbound API, admin API, D1/problem-shaped errors."""
    app = Flask("d1sim.serve")
    app.config["MAX_CONTENT_LENGTH"] = server.settings.batch_limit
    app.extensions["d1sim.server"] = server
    add_inbound_routes(app, server)
    add_admin_routes(app, server)
    add_run_routes(app, server)
    app.add_url_rule("/openapi.json", view_func=_openapi, methods=["GET"])
    _add_ui(app, server)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app
