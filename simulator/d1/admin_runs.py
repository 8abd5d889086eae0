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

from d1sim.contracts.scenario.durations import DurationError, parse_duration
from d1sim.simulator.d1.admin import AdminError, body_json, issuer_or_404
from d1sim.simulator.d1.app import ADMIN, D1Server, json_response
from d1sim.simulator.d1.cancel import operations_in
from d1sim.simulator.d1.orders import held_operation
from d1sim.simulator.delivery.outbox import STATES, Attempt, StoredDelivery

MAX_PAGE = 1000


def page() -> tuple[int, int]:
    """``limit`` (1-1000, default 100) and ``offset`` from the query string."""
    try:
        limit = int(request.args.get("limit", 100))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        raise AdminError(400, "Bad request", "limit and offset are integers") from None
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise AdminError(400, "Bad request", f"limit is 1-{MAX_PAGE}, offset 0 or more")
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
        "startedAt": attempt.started_at,
        "statusCode": attempt.status_code,
        "latencyMs": round(attempt.latency_ms, 3),
        "response": attempt.response.decode("utf-8", "replace"),
        "error": attempt.error,
        "warning": attempt.warning,
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
        "lastError": item.last_error,
        "fault": d.fault,
        "nextAttemptAt": item.next_attempt_at,
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
            "created": run.created,
            "target": run.target,
            "finished": record.finished,
            "options": run.options,
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
        item = self.server.outbox.delivery(delivery_id)
        if item is None or self.server.store.run(item.run_id) is None:
            raise AdminError(404, "Not found", f"no delivery {delivery_id} made by this server")
        return json_response(delivery_json(item, full=True))

    def cards(self) -> Response:
        limit, offset = page()
        issuer_id = request.args.get("issuerId")
        orders = self.server.store.orders(issuer_id, limit, offset)
        return json_response({"cards": [{**o.as_json(), "held": self._held(o.run_id, o.card_id)} for o in orders]})

    def _held(self, run_id: str | None, card_id: str) -> Any:
        if run_id is None:
            return None
        op = held_operation(operations_in(self.server.outbox.sent(run_id)), card_id)
        return op["details"]["status"] if op else None

    def resend(self, delivery_id: int) -> Response:
        """Send one delivery again now (a duplicate, if it was delivered)."""
        item = self.server.outbox.delivery(delivery_id)
        if item is None or self.server.store.run(item.run_id) is None:
            raise AdminError(404, "Not found", f"no delivery {delivery_id} made by this server")
        self._requeue([(item.run_id, delivery_id)])
        return json_response({"requeued": 1, "id": delivery_id}, 202)

    def recover(self) -> Response:
        """Send again every dead delivery last tried at/after ``since``.

        ``since`` is an ISO 8601 time, a duration ago (``"2h"``) or Unix seconds; default: ever.
        """
        body = body_json()
        since = _since(body.get("since"))
        found = self.server.outbox.dead_since(since, self._run_ids(body.get("issuerId")))
        return json_response({"requeued": self._requeue(found), "since": since}, 202)

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
        for _, delivery_id in found:
            self.server.outbox.requeue(delivery_id)
        for run_id in dict.fromkeys(run_id for run_id, _ in found):
            self.server.dispatcher.reload(run_id)
        return len(found)


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
        app.add_url_rule(ADMIN + path, view_func=view, methods=[method])
