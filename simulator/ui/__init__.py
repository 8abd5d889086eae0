"""The inspection UI: runs, a card's timeline, every delivery attempt, failures, check results.

Server-rendered pages (Flask blueprint + Jinja templates, a few lines of plain JavaScript for
live refresh). ``d1sim serve`` mounts it at ``/`` over its own database, with resend and
recover going through its admin API; ``d1sim ui --db FILE`` serves it alone, read-only, over a
replay's outbox. It reads through :mod:`d1sim.simulator.ui.queries` only.

Exposes :func:`add_ui` and :func:`create_ui_app`.

Example::

    >>> app = create_ui_app(":memory:")
    >>> app.test_client().get("/").status_code
    200
"""

from __future__ import annotations

import hmac
from base64 import b64decode
from binascii import Error as Base64Error
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request

from d1sim.simulator.ui.views import AdminCall, ui

REALM = 'Basic realm="d1sim", charset="UTF-8"'


def add_ui(app: Flask, db_path: str | Path, *, token: str | None = None, admin: AdminCall | None = None) -> None:
    """Mount the UI on ``app`` over the database at ``db_path``.

    ``token``: when set, every page needs it (``Authorization: Bearer`` or a browser's Basic
    login with the token as password) -- the admin API's rule. ``admin``: how resend and
    recover reach the admin API; without it the UI only reads.
    """
    app.config["D1SIM_UI_DB"] = str(db_path)
    app.config["D1SIM_UI_TOKEN"] = token
    app.config["D1SIM_UI_ADMIN"] = admin
    app.register_blueprint(ui)


@ui.before_request
def _guard() -> Response | None:
    """The admin token (when there is one), and no writes from another site's page."""
    expected = current_app.config.get("D1SIM_UI_TOKEN")
    if expected and not hmac.compare_digest(_given_token().encode(), expected.encode()):
        return Response("this UI needs the admin token (user: any, password: the token)\n", 401,
                        {"WWW-Authenticate": REALM}, mimetype="text/plain")
    if request.method == "POST" and not _same_origin():
        return Response("cross-site form posts are refused\n", 403, mimetype="text/plain")
    return None


def _given_token() -> str:
    header = request.headers.get("Authorization", "")
    kind, _, value = header.partition(" ")
    if kind.lower() == "bearer":
        return value.strip()
    if kind.lower() == "basic":
        try:
            return b64decode(value.strip()).decode("utf-8").partition(":")[2]
        except (Base64Error, UnicodeDecodeError):
            return ""
    return ""


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if request.headers.get("Sec-Fetch-Site") not in (None, "same-origin", "none"):
        return False
    return origin is None or origin == request.host_url.rstrip("/")


def create_ui_app(db_path: str | Path, token: str | None = None) -> Flask:
    """A Flask app serving only the UI (``d1sim ui``), read-only."""
    app = Flask("d1sim.ui")
    add_ui(app, db_path, token=token)
    return app


def admin_caller(app: Flask, prefix: str, token: str | None) -> AdminCall:
    """An :data:`AdminCall` that runs the admin API of ``app`` in-process, with its token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        answer = app.test_client().post(prefix + path, json=body, headers=headers)
        return answer.status_code, answer.get_json(silent=True)

    return call
