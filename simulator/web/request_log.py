"""One log line per HTTP request for ``d1sim receiver`` and ``d1sim serve`` (text or JSON).

Each line: time (RFC 3339), method, path, status, latency, correlation id and, when the body is
a D1 notification, its cards and ``details.status`` values. Lines go to stderr (stdout keeps
the banner), one write per line under a lock, so concurrent requests never interleave.

Example::

    >>> from flask import Flask
    >>> import io
    >>> app, out = Flask("demo"), io.StringIO()
    >>> app.add_url_rule("/hook", "hook", lambda: ("", 204), methods=["POST"])
    >>> add_request_log(app, "text", out)
    >>> _ = app.test_client().post("/hook", json={"operations": [{"cardId": "c1",
    ...     "details": {"status": "DATA_PREPARED"}}]}, headers={"x-correlation-id": "k-1"})
    >>> out.getvalue().split()[1:4], out.getvalue().split()[-3:]
    (['POST', '/hook', '204'], ['corr=k-1', 'cards=c1', 'statuses=DATA_PREPARED'])
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

import orjson
from flask import Flask, Response, g, request

from d1sim.simulator.ui.results import rfc3339

FORMATS = ("text", "json")
MAX_PARSED = 1024 * 1024  # bigger bodies are logged without their cards (parsing is not free)
MAX_LISTED = 10  # cards or statuses named on one line; the rest are counted


def add_request_log(app: Flask, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Log every request ``app`` answers to ``stream`` (default: stderr) in ``fmt``."""
    lock = threading.Lock()

    @app.before_request
    def _start() -> None:
        g.d1sim_log_started = time.perf_counter()

    @app.after_request
    def _log(response: Response) -> Response:
        started = g.get("d1sim_log_started", time.perf_counter())
        fields = _fields(response.status_code, (time.perf_counter() - started) * 1000)
        line = orjson.dumps(fields).decode() if fmt == "json" else _text(fields)
        with lock:
            target = stream or sys.stderr
            target.write(line + "\n")
            target.flush()
        return response


def _fields(status: int, latency_ms: float) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "time": rfc3339(time.time()),
        "method": request.method,
        "path": request.path,
        "status": status,
        "latencyMs": round(latency_ms, 1),
        "correlationId": request.headers.get("x-correlation-id"),
    }
    cards, statuses = _notification()
    if cards or statuses:
        fields |= {"cards": cards, "statuses": statuses}
    return fields


def _notification() -> tuple[list[str], list[str]]:
    """Cards and statuses of a notification body (already read by the view), else empty."""
    if request.method != "POST" or (request.content_length or 0) > MAX_PARSED or not request.is_json:
        return [], []
    try:
        body = orjson.loads(request.get_data(cache=True))
    except orjson.JSONDecodeError:
        return [], []
    ops = body.get("operations") if isinstance(body, dict) else None
    if not isinstance(ops, list):
        return [], []
    ops = [op for op in ops if isinstance(op, dict)]
    cards = list(dict.fromkeys(str(op.get("cardId")) for op in ops if op.get("cardId") is not None))
    statuses = [str(d.get("status")) for op in ops if isinstance(d := op.get("details"), dict)]
    return cards, statuses


def _text(fields: dict[str, Any]) -> str:
    parts = [fields["time"], fields["method"], fields["path"], str(fields["status"]),
             f"{fields['latencyMs']:.1f}ms"]
    if fields["correlationId"]:
        parts.append(f"corr={fields['correlationId']}")
    if "cards" in fields:
        parts += [f"cards={_listed(fields['cards'])}", f"statuses={_listed(fields['statuses'])}"]
    return " ".join(parts)


def _listed(values: list[str]) -> str:
    shown = ",".join(values[:MAX_LISTED])
    return shown + (f",+{len(values) - MAX_LISTED} more" if len(values) > MAX_LISTED else "")


def add_log_options(parser: Any) -> None:
    """``--log-format text|json`` and ``--quiet`` for a server command."""
    group = parser.add_argument_group("request log (stderr)")
    group.add_argument("--log-format", choices=FORMATS, default="text",
                       help="one line per request as text or JSON (default: %(default)s)")
    group.add_argument("--quiet", action="store_true", help="no request log")


def install_from_args(app: Flask, args: Any) -> None:
    """The request log the options ask for (none with ``--quiet``)."""
    if not args.quiet:
        add_request_log(app, args.log_format)
