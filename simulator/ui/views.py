"""The UI's pages: runs, a run's deliveries, one delivery, a card's timeline, failures, checks,
search; and the two actions (resend one, recover all) that hand over to the admin API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

import d1sim.simulator.ui.present as present
from d1sim.contracts.lifecycle import load_lifecycle
from d1sim.simulator.ui.diagram import lifecycle_diagram
from d1sim.simulator.ui.queries import PAGE, UI_STATES, DeliveryRow, OutboxReader
from d1sim.simulator.ui.results import read_sessions
from d1sim.simulator.ui.search import search as search_cards

# (path under /_sim, JSON body) -> (HTTP status, JSON answer); None when no admin API is mounted.
AdminCall = Callable[[str, dict[str, Any]], tuple[int, Any]]

ui = Blueprint("ui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/_ui/static")


def reader() -> OutboxReader:
    """This request's read-only reader (opened on first use, closed at teardown)."""
    if "ui_reader" not in g:
        g.ui_reader = OutboxReader(current_app.config["D1SIM_UI_DB"])
    return g.ui_reader


@ui.teardown_app_request
def _close(_exc: BaseException | None) -> None:
    found = g.pop("ui_reader", None)
    if found is not None:
        found.close()


@ui.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"fmt_time": present.format_time, "answer": present.answer,
            "can_act": current_app.config.get("D1SIM_UI_ADMIN") is not None,
            "db_path": current_app.config["D1SIM_UI_DB"]}


def _int_arg(name: str, default: int | None = None) -> int | None:
    raw = request.args.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        abort(400, f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def _status_arg() -> str | None:
    raw = request.args.get("status", "").strip()
    if raw and raw != "none" and not (raw.isdigit() and 100 <= int(raw) <= 599):
        abort(400, "status is an HTTP status code (100-599) or 'none' for no answer")
    return raw or None


@ui.get("/")
def runs() -> str:
    offset = _int_arg("offset", 0) or 0
    rows = reader().runs(PAGE + 1, offset)
    return render_template("runs.html", runs=rows[:PAGE], offset=offset, more=len(rows) > PAGE,
                           page_size=PAGE, live=any(r.status != "done" for r in rows[:PAGE]) or not rows)


@ui.get("/runs/<run_id>")
def run(run_id: str) -> str:
    found = reader().run(run_id)
    if found is None:
        abort(404, f"no run {run_id} in this database")
    state = request.args.get("state") or None
    if state is not None and state not in UI_STATES:
        abort(400, f"state is one of {', '.join(UI_STATES)}")
    status, after = _status_arg(), _int_arg("after", 0) or 0
    rows = reader().deliveries(run_id, state=state, status=status, after=after, limit=PAGE + 1)
    return render_template("run.html", run=found, deliveries=rows[:PAGE], state=state, status=status or "",
                           after=after, next_after=rows[PAGE - 1].seq if len(rows) > PAGE else None,
                           states=UI_STATES, live=found.status != "done")


@ui.get("/deliveries/<int:delivery_id>")
def delivery(delivery_id: int) -> str:
    item = reader().delivery(delivery_id)
    if item is None:
        abort(404, f"no delivery {delivery_id} in this database")
    settings, _ = reader().run_settings(item.run_id)
    rebuilt = present.request_headers(item.correlation_id, item.run_id, item.seq, settings)
    return render_template("delivery.html", item=item, body=present.pretty_body(item.body),
                           header_sections=present.attempt_headers(item.attempts, rebuilt),
                           excerpt=present.excerpt, notice=request.args.get("notice"))


@ui.get("/cards/<card_id>")
def card(card_id: str) -> str:
    items = reader().card_deliveries(card_id)
    if not items:
        abort(404, f"no delivery carries card {card_id}")
    entries = _timeline(card_id, items)
    model = load_lifecycle()
    entries.sort(key=lambda e: (model.rank(e["status"]) if model.is_known(e["status"]) else 99, e["order"]))
    diagram = lifecycle_diagram(model, [e["status"] for e in sorted(entries, key=lambda e: e["order"])])
    return render_template("card.html", card_id=card_id, entries=entries, diagram=diagram,
                           excerpt=present.excerpt)


def _timeline(card_id: str, items: list[DeliveryRow]) -> list[dict[str, Any]]:
    """One entry per operation of ``card_id``: status, virtual and real times, its delivery."""
    entries: list[dict[str, Any]] = []
    starts: dict[str, float | None] = {}
    for item in items:
        if item.run_id not in starts:
            starts[item.run_id] = reader().run_settings(item.run_id)[1]
        start = starts[item.run_id]
        virtual = present.format_time(start + item.due) if start is not None else present.format_offset(item.due)
        for op in item.operations():
            details = op.get("details") if isinstance(op.get("details"), dict) else {}
            if op.get("cardId") != card_id or not isinstance(details.get("status"), str):
                continue
            entries.append({"status": details["status"], "virtual": virtual, "item": item,
                            "operation_id": op.get("operationId"), "order": len(entries),
                            "real": item.attempts[0].started_at if item.attempts else None})
    return entries


@ui.get("/failures")
def failures() -> str:
    issuer, run_id = request.args.get("issuer") or None, request.args.get("run") or None
    status, before = _status_arg(), _int_arg("before")
    rows = reader().failures(issuer=issuer, run_id=run_id, status=status, before=before, limit=PAGE + 1)
    return render_template("failures.html", items=rows[:PAGE], issuer=issuer or "", run_id=run_id or "",
                           status=status or "", issuers=reader().issuers(),
                           next_before=rows[PAGE - 1].id if len(rows) > PAGE else None,
                           notice=request.args.get("notice"))


@ui.get("/checks")
def checks() -> str:
    sessions = read_sessions(reader().db) if reader().has_checks else []
    return render_template("checks.html", sessions=sessions)


@ui.get("/search")
def search() -> str:
    text = request.args.get("q", "").strip()
    hits = search_cards(reader(), text) if text else []
    return render_template("search.html", q=text, hits=hits)


@ui.post("/deliveries/<int:delivery_id>/resend")
def resend(delivery_id: int) -> WerkzeugResponse:
    status, body = _admin(f"/deliveries/{delivery_id}/resend", {})
    notice = "queued to be sent again" if status == 202 else _problem_text(status, body)
    return redirect(url_for("ui.delivery", delivery_id=delivery_id, notice=notice), 303)


@ui.post("/failures/recover")
def recover() -> WerkzeugResponse:
    issuer = request.form.get("issuer") or None
    status, body = _admin("/deliveries/recover", {"issuerId": issuer} if issuer else {})
    notice = f"{body.get('requeued', 0)} dead deliveries queued again" if status == 202 else _problem_text(status, body)
    return redirect(url_for("ui.failures", notice=notice), 303)


def _admin(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    call: AdminCall | None = current_app.config.get("D1SIM_UI_ADMIN")
    if call is None:
        abort(405, "this UI shows a replay's outbox: resend with 'd1sim deliveries resend ID --db FILE'")
    return call(path, body)


def _problem_text(status: int, body: Any) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    return f"the admin API answered {status}: {detail or 'no detail'}"


@ui.errorhandler(HTTPException)
def _error(exc: HTTPException) -> tuple[str, int]:
    code = exc.code or 500
    return render_template("error.html", code=code, title=exc.name, detail=exc.description), code
