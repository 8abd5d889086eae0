"""The reference receiver's control routes (``/_receiver/...``): counters and reset, for tests and demos.

They take the webhook's credentials when the receiver has some. A write to them must also pass
the same-origin guard of the mock D1's admin API (:mod:`d1sim.simulator.web.origins`): a web
page open in the user's browser cannot reset a receiver on the user's machine, with a foreign
``Origin`` or ``Host`` (403) or a ``text/plain`` or form body (415). The webhook itself is not
guarded: D1 posts JSON to it from anywhere.

Example::

    >>> from d1sim.simulator.receiver.app import create_app
    >>> http = create_app().test_client()
    >>> http.post("/_receiver/reset", headers={"Origin": "http://evil.example"}).status_code
    403
    >>> http.post("/_receiver/reset").status_code
    204
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson
from flask import Flask, Response, request

from d1sim.simulator.web.origins import SAFE_METHODS, OriginGuard

CONTROL_PREFIX = "/_receiver"


def add_control_routes(
    app: Flask,
    guard: OriginGuard,
    refusal: Callable[[], Response | None],
    counters: Callable[[], Mapping[str, int]],
    reset: Callable[[], None],
) -> None:
    """Mount ``GET /_receiver/stats`` (``counters``) and ``POST /_receiver/reset`` (``reset``) on
    ``app``, each behind ``refusal`` (the receiver's auth), their writes behind ``guard``."""

    def stats() -> Response:
        return refusal() or Response(orjson.dumps(counters()), 200, mimetype="application/json")

    def forget() -> Response:
        if (refused := refusal()) is not None:
            return refused
        reset()
        return Response(status=204)

    app.add_url_rule(CONTROL_PREFIX + "/stats", "receiver_stats", stats, methods=["GET"])
    app.add_url_rule(CONTROL_PREFIX + "/reset", "receiver_reset", forget, methods=["POST"])

    @app.before_request
    def _same_origin_writes() -> Response | None:
        # Reads stay open to any Host: they show counters only (behind the token when there is
        # one), as the state probe /cards/{cardId} shows states, and checks read them by name.
        if request.method in SAFE_METHODS or not request.path.startswith(CONTROL_PREFIX + "/"):
            return None
        return guard.refusal(request)
