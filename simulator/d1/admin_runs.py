"""Admin views over what the mock D1 sent: runs, cards, deliveries and their attempts, and the
ways to send again -- resend one delivery, recover dead ones since a time, replay all undelivered.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from flask import Flask, Response, request

from d1sim.contracts.protocol import ADMIN_PREFIX
from d1sim.contracts.scenario.durations import DurationError, parse_duration
from d1sim.simulator.d1.admin import MAX_ID, AdminError, body_json, issuer_or_404
from d1sim.simulator.d1.cancel import operations_in
from d1sim.simulator.d1.orders import held_operation
from d1sim.simulator.d1.responses import json_response
from d1sim.simulator.d1.server import D1Server
from d1sim.simulator.delivery.outbox import STATES, Attempt, StoredDelivery
from d1sim.simulator.redaction import mask_headers, mask_text, mask_value, strip_userinfo
from d1sim.simulator.ui.results import rfc3339

MAX_PAGE = 1000


def page() -> tuple[int, int]:
    """``limit`` (1-1000, default 100) and ``offset`` from the query string."""
    try:
        limit = int(request.args.get("limit", 100))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        raise AdminError(400, "Bad request", "limit and offset are integers") from None
    if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= MAX_ID:
        raise AdminError(400, "Bad request", f"limit is 1-{MAX_PAGE}, offset 0-{MAX_ID}")
    return limit, offset


def body_value(body: bytes) -> Any:
    """A delivery body as JSON when it parses, else base64 (a deliberately broken body)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"base64": base64.b64encode(body).decode()}


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "startedAt": rfc3339(attempt.started_at),
        "statusCode": attempt.status_code,
        "latencyMs": round(attempt.latency_ms, 3),
        "response": mask_text(attempt.response.decode("utf-8", "replace")),
        "error": mask_text(attempt.error) if attempt.error else None,
        "warning": attempt.warning,
        # [name, value] pairs as sent, credentials masked; null: recorded before they were kept
        "requestHeaders": None if attempt.request_headers is None else [
            list(pair) for pair in mask_headers(attempt.request_headers)],
    }


def delivery_json(item: StoredDelivery, full: bool = False) -> dict[str, Any]:
    d = item.delivery
    out: dict[str, Any] = {
        "id": item.id,
        "runId": item.run_id,
        "seq": d.seq,
        "due": d.due,
        "cardIds": list(d.card_ids),
        "statuses": list(d.statuses),
        "state": item.state,
        "attempts": item.attempts,
        "lastStatus": item.last_status,
        "lastError": mask_text(item.last_error) if item.last_error else None,
        "fault": d.fault,
        "nextAttemptAt": None if item.next_attempt_at is None else rfc3339(item.next_attempt_at),
    }
    if full:
        out["body"] = body_value(d.body)
        out["history"] = [attempt_json(a) for a in item.history]
    return out


class RunViews:
    """Runs, cards, deliveries, and sending again."""

    def __init__(self, server: D1Server) -> None:
        self.server = server

    def runs(self) -> Response:
        limit, offset = page()
        records = self.server.store.runs(request.args.get("issuerId"))[::-1][offset : offset + limit]
        return json_response({"runs": [self._run_json(r.run_id) for r in records]})

    def run(self, run_id: str) -> Response:
        if self.server.store.run(run_id) is None:
            raise AdminError(404, "Not found", f"no run {run_id} made by this server")
        return json_response(self._run_json(run_id))

    def _run_json(self, run_id: str) -> dict[str, Any]:
        record, run = self.server.store.run(run_id), self.server.outbox.run(run_id)
        assert record is not None and run is not None
        return {
            "runId": run_id,
            "issuerId": record.issuer_id,
            "scenario": run.name,
            "created": run.created.replace("+00:00", "Z"),
            "target": strip_userinfo(run.target),
            "finished": record.finished,
            "options": mask_value(run.options),
            "deliveries": self.server.outbox.summary(run_id),
        }

    def deliveries(self, run_id: str) -> Response:
        state = request.args.get("state")
        if state is not None and state not in STATES:
            raise AdminError(400, "Bad request", f"state is one of {', '.join(STATES)}")
        limit, offset = page()
        items = self.server.outbox.deliveries(run_id, state, limit, offset)
        return json_response({"deliveries": [delivery_json(i) for i in items]})

    def delivery(self, delivery_id: int) -> Response:
        return json_response(delivery_json(self._delivery(delivery_id), full=True))

    def _delivery(self, delivery_id: int) -> StoredDelivery:
        # An id past 64 bits cannot be in the database (and SQLite would refuse to look).
        item = self.server.outbox.delivery(delivery_id) if delivery_id <= MAX_ID else None
        if item is None or self.server.store.run(item.run_id) is None:
            raise AdminError(404, "Not found", f"no delivery {delivery_id} made by this server")
        return item

    def cards(self) -> Response:
        limit, offset = page()
        issuer_id = request.args.get("issuerId")
        orders = self.server.store.orders(issuer_id, limit, offset)
        cards = [{**o.as_json(), "created": rfc3339(o.created), "held": self._held(o.run_id, o.card_id)}
                 for o in orders]
        return json_response({"cards": cards})

    def _held(self, run_id: str | None, card_id: str) -> Any:
        if run_id is None:
            return None
        op = held_operation(operations_in(self.server.outbox.sent(run_id)), card_id)
        return op["details"]["status"] if op else None

    def resend(self, delivery_id: int) -> Response:
        """Send one delivery again now (a duplicate, if it was delivered)."""
        item = self._delivery(delivery_id)
        self._requeue([(item.run_id, delivery_id)])
        return json_response({"requeued": 1, "id": delivery_id}, 202)

    def recover(self) -> Response:
        """Send again every dead delivery last tried at/after ``since``.

        ``since`` is an ISO 8601 time, a duration ago (``"2h"``) or Unix seconds; default: ever.
        """
        body = body_json()
        since = _since(body.get("since"))
        found = self.server.outbox.dead_since(since, self._run_ids(body.get("issuerId")))
        return json_response({"requeued": self._requeue(found), "since": _shown_since(since)}, 202)

    def replay(self) -> Response:
        """Send again now everything never delivered: dead ones and those waiting on a backoff."""
        body = body_json()
        found = self.server.outbox.undelivered(self._run_ids(body.get("issuerId")))
        return json_response({"requeued": self._requeue(found)}, 202)

    def _run_ids(self, issuer_id: Any) -> list[str]:
        if issuer_id is None:
            return [r.run_id for r in self.server.store.runs()]
        return [r.run_id for r in self.server.store.runs(issuer_or_404(self.server, str(issuer_id)).issuer_id)]

    def _requeue(self, found: list[tuple[str, int]]) -> int:
        self.server.outbox.requeue_many(delivery_id for _, delivery_id in found)
        for run_id in dict.fromkeys(run_id for run_id, _ in found):
            self.server.dispatcher.reload(run_id)
        return len(found)


def _shown_since(since: float) -> str | None:
    """``since`` as RFC 3339; None for "ever" or a moment no calendar can write (year > 9999)."""
    try:
        return rfc3339(since) if since > 0 else None
    except (OverflowError, OSError, ValueError):
        return None


def _since(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)  # Unix time
    try:
        return time.time() - parse_duration(value).total_seconds()
    except DurationError:
        pass
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise AdminError(400, "Bad request", "since is an ISO 8601 time or a duration ago such as 2h") from None


def add_run_routes(app: Flask, server: D1Server) -> None:
    """Mount the run, card and delivery views."""
    views = RunViews(server)
    rules: list[tuple[str, Callable[..., Response], str]] = [
        ("/runs", views.runs, "GET"),
        ("/runs/<run_id>", views.run, "GET"),
        ("/runs/<run_id>/deliveries", views.deliveries, "GET"),
        ("/cards", views.cards, "GET"),
        ("/deliveries/<int:delivery_id>", views.delivery, "GET"),
        ("/deliveries/<int:delivery_id>/resend", views.resend, "POST"),
        ("/deliveries/recover", views.recover, "POST"),
        ("/deliveries/replay", views.replay, "POST"),
    ]
    for path, view, method in rules:
        app.add_url_rule(ADMIN_PREFIX + path, view_func=view, methods=[method])
