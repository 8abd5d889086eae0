"""Correct receivers built the way integrators build them, independently of d1sim's own code.

None of them imports d1sim's convergence, matching or receiver modules: each holds the rule of
the published contract in its own way (a dict, an SQL upsert, a dedupe table, an asyncio
queue), so the checker is tested against an oracle it does not share. Every one must pass
every check; each differs from the reference receiver in one way a real receiver may:

- applies from a worker queue after answering 204;
- answers 202 with a JSON body;
- rate-limits with 429 + Retry-After (and the odd 503 without it);
- issues 2-second OAuth2 tokens and refuses expired ones;
- stores operations in SQLite with an upsert and gives timestamps back re-formatted;
- is an ASGI (FastAPI) app with an asyncio worker;
- drops duplicates through a table of seen operations;
- breaks a startTime tie between two orders by rank, not by operationId.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.responses import Response as Empty
from flask import Flask, Response, jsonify, request

TOKEN = "correct-token"
CLIENT_ID, CLIENT_SECRET = "d1-client", "d1-secret"
# The published ranks (d1-produce.md section 6); failure terminals outrank CARD_SHIPPED.
RANKS = {"CARD_PROD_REQUESTED": 0, "DATA_PREPARED": 1, "CARD_PROD_READY": 2,
         "CARD_PROD_ONGOING": 3, "CARD_PROD_DONE": 4, "CARD_SHIPPED": 5,
         "DATA_EXCEPTION": 6, "CARD_PROD_CANCELED": 6}
OLDEST = datetime.min.replace(tzinfo=UTC)
PATH = "/notifications/d1/v2/issuers/<issuer>/cards"


def instant(value: Any) -> datetime:
    """A timestamp as an aware datetime; anything unreadable counts as the oldest."""
    try:
        moment = datetime.fromisoformat(str(value).upper())
    except ValueError:
        return OLDEST
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def produce_updates(body: Any) -> list[dict[str, Any]] | None:
    """The PRODUCE operations with a known status, or None when the body is no notification."""
    if not isinstance(body, dict) or not isinstance(body.get("operations"), list):
        return None
    result = []
    for op in body["operations"]:
        if not isinstance(op, dict) or not isinstance(op.get("details"), dict):
            continue
        status = op["details"].get("status")  # any JSON value in a schema-invalid body
        known = op.get("operation") == "PRODUCE" and isinstance(status, str) and status in RANKS
        if known and isinstance(op.get("cardId"), str):
            result.append(op)
    return result


def sort_key(op: dict[str, Any], tie_by_operation: bool = True) -> tuple[Any, ...]:
    """Order of precedence: startTime, (operationId), rank, shipment.lastUpdatedAt."""
    details = op["details"]
    shipment = details.get("shipment") if isinstance(details.get("shipment"), dict) else {}
    tie = str(op.get("operationId")) if tie_by_operation else ""
    return (instant(op.get("startTime")), tie, RANKS[details["status"]],
            instant(shipment.get("lastUpdatedAt")) if shipment.get("lastUpdatedAt") else OLDEST)


def parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


class Held:
    """A dict of held operations behind a lock, with a probe view."""

    def __init__(self, tie_by_operation: bool = True) -> None:
        self.cards: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.tie_by_operation = tie_by_operation

    def apply(self, op: dict[str, Any]) -> None:
        key = sort_key(op, self.tie_by_operation)
        with self.lock:
            held = self.cards.get(op["cardId"])
            if held is None or key > sort_key(held, self.tie_by_operation):
                self.cards[op["cardId"]] = op

    def view(self, card_id: str) -> dict[str, Any] | None:
        with self.lock:
            op = self.cards.get(card_id)
        if op is None:
            return None
        state = {"cardId": card_id, "status": op["details"]["status"]}
        if "shipment" in op["details"] and op["details"]["status"] == "CARD_SHIPPED":
            state["shipment"] = op["details"]["shipment"]
        return state


def flask_receiver(
    accept: Callable[[list[dict[str, Any]]], Response | None],
    view: Callable[[str], dict[str, Any] | None],
    *,
    authorized: Callable[[str | None], bool] = lambda header: header == f"Bearer {TOKEN}",
) -> Flask:
    """A Flask receiver: auth, parse, hand the PRODUCE updates to ``accept``, probe by ``view``."""
    app = Flask("correct")

    @app.post(PATH)
    def notify(issuer: str) -> Any:
        if not authorized(request.headers.get("Authorization")):
            return jsonify(error="unauthorized"), 401
        updates = produce_updates(parse(request.get_data()))
        if updates is None:
            return jsonify(error="not a notification"), 400
        return accept(updates) or Response(status=204)

    @app.get("/cards/<card_id>")
    def probe(card_id: str) -> Any:
        state = view(card_id)
        return (jsonify(state), 200) if state else (jsonify(error="unknown card"), 404)

    return app


def worker_queue() -> Flask:
    """204 at once; a worker thread applies each batch 5-40 ms later.

    The worker ends after a quiet 0.3 s and is started again by the next POST, so no thread
    outlives the test that used the receiver for long (forked workers elsewhere need that).
    """
    held, inbox = Held(), queue.Queue()
    worker: dict[str, threading.Thread] = {}
    lock = threading.Lock()

    def work() -> None:
        while True:
            try:
                due, updates = inbox.get(timeout=0.3)
            except queue.Empty:
                with lock:  # accept() puts and checks the worker under the same lock
                    if inbox.empty():
                        del worker["thread"]
                        return
                continue
            time.sleep(max(0.0, due - time.monotonic()))
            for op in updates:
                held.apply(op)

    delays = iter(range(10**9))

    def accept(updates: list[dict[str, Any]]) -> None:
        with lock:
            inbox.put((time.monotonic() + 0.005 + (next(delays) % 8) * 0.005, updates))
            if "thread" not in worker:
                worker["thread"] = threading.Thread(target=work, daemon=True)
                worker["thread"].start()

    return flask_receiver(accept, held.view)


def accepted_with_body() -> Flask:
    """Answers 202 with a JSON receipt (D1 counts any 2xx as delivered)."""
    held = Held()

    def accept(updates: list[dict[str, Any]]) -> Response:
        for op in updates:
            held.apply(op)
        return Response(json.dumps({"received": len(updates)}), 202, mimetype="application/json")

    return flask_receiver(accept, held.view)


def rate_limited() -> Flask:
    """Every 40th POST gets 429 with Retry-After: 1, every 7th a 503 without it; neither applies."""
    held, count = Held(), iter(range(1, 10**9))

    def accept(updates: list[dict[str, Any]]) -> Response | None:
        n = next(count)
        if n % 40 == 0:
            return Response("slow down", 429, headers={"Retry-After": "1"})
        if n % 7 == 0:
            return Response("busy", 503)
        for op in updates:
            held.apply(op)
        return None

    return flask_receiver(accept, held.view)


def short_tokens() -> Flask:
    """Issues OAuth2 tokens that live 2 seconds and refuses them once expired."""
    held, tokens = Held(), {}
    lock = threading.Lock()

    def authorized(header: str | None) -> bool:
        token = (header or "").removeprefix("Bearer ")
        with lock:
            return tokens.get(token, 0.0) > time.monotonic()

    def accept(updates: list[dict[str, Any]]) -> None:
        for op in updates:
            held.apply(op)

    app = flask_receiver(accept, held.view, authorized=authorized)

    @app.post("/authz/d1/v1/oauth2/token")
    def token() -> Any:
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {basic}":
            return jsonify(error="invalid_client"), 401
        issued = hashlib.sha256(str(time.monotonic_ns()).encode()).hexdigest()
        with lock:
            tokens[issued] = time.monotonic() + 2.0
        return jsonify(access_token=issued, token_type="Bearer", expires_in="2")

    return app


SCHEMA = """
CREATE TABLE cards (card_id TEXT PRIMARY KEY, operation_id TEXT, start_time TEXT, rank INTEGER,
                    updated_at TEXT, status TEXT, shipment TEXT)
"""
# The row is replaced only by a later (start_time, operation_id, rank, updated_at): ISO strings
# in one fixed UTC format compare in time order.
UPSERT = """
INSERT INTO cards VALUES (:card_id, :operation_id, :start_time, :rank, :updated_at, :status,
                          :shipment)
ON CONFLICT(card_id) DO UPDATE SET operation_id = excluded.operation_id,
    start_time = excluded.start_time, rank = excluded.rank, updated_at = excluded.updated_at,
    status = excluded.status, shipment = excluded.shipment
WHERE (excluded.start_time, excluded.operation_id, excluded.rank, excluded.updated_at)
    > (cards.start_time, cards.operation_id, cards.rank, cards.updated_at)
"""


def sql_time(value: Any) -> str:
    """The timestamp as SQLite likes it: ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC, no zone."""
    return instant(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def sql_upsert() -> Flask:
    """Stores each card in SQLite with an upsert; gives shipment times back as SQLite wrote them."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute(SCHEMA)
    lock = threading.Lock()

    def accept(updates: list[dict[str, Any]]) -> None:
        with lock, db:
            for op in updates:
                shipment = op["details"].get("shipment")
                shipment = dict(shipment) if isinstance(shipment, dict) else None
                for name in ("lastUpdatedAt", "estimatedDeliveryDate"):
                    if shipment and isinstance(shipment.get(name), str):
                        shipment[name] = sql_time(shipment[name])
                db.execute(UPSERT, {
                    "card_id": op["cardId"], "operation_id": str(op.get("operationId")),
                    "start_time": sql_time(op.get("startTime")),
                    "rank": RANKS[op["details"]["status"]],
                    "updated_at": sql_time(shipment.get("lastUpdatedAt")) if shipment and
                    shipment.get("lastUpdatedAt") else "",
                    "status": op["details"]["status"],
                    "shipment": json.dumps(shipment) if shipment else None})

    def view(card_id: str) -> dict[str, Any] | None:
        with lock:
            row = db.execute("SELECT status, shipment FROM cards WHERE card_id = ?",
                             (card_id,)).fetchone()
        if row is None:
            return None
        state: dict[str, Any] = {"cardId": card_id, "status": row[0]}
        if row[1] and row[0] == "CARD_SHIPPED":
            state["shipment"] = json.loads(row[1])
        return state

    return flask_receiver(accept, view)


def dedupe_table() -> Flask:
    """Remembers a digest of every operation applied and skips one seen before."""
    held, seen, lock = Held(), set(), threading.Lock()

    def accept(updates: list[dict[str, Any]]) -> None:
        for op in updates:
            digest = hashlib.sha256(json.dumps(op, sort_keys=True).encode()).hexdigest()
            with lock:
                if digest in seen:
                    continue
                seen.add(digest)
            held.apply(op)

    return flask_receiver(accept, held.view)


def tie_by_rank() -> Flask:
    """Two orders with one startTime: the higher rank wins (the first one on a full tie)."""
    held = Held(tie_by_operation=False)

    def accept(updates: list[dict[str, Any]]) -> None:
        for op in updates:
            held.apply(op)

    return flask_receiver(accept, held.view)


def fastapi_worker() -> Any:
    """A FastAPI app: 204 at once, an asyncio task applies from a queue moments later."""
    app, held = FastAPI(), Held()
    inbox: dict[str, Any] = {}

    async def worker() -> None:
        while True:
            updates = await inbox["queue"].get()
            await asyncio.sleep(0.01)
            for op in updates:
                held.apply(op)

    @app.post("/notifications/d1/v2/issuers/{issuer}/cards")
    async def notify(issuer: str, req: Request) -> Any:
        if req.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "unauthorized"}, 401)
        updates = produce_updates(parse(await req.body()))
        if updates is None:
            return JSONResponse({"error": "not a notification"}, 400)
        if "queue" not in inbox:  # made on the loop that serves the app
            inbox["queue"] = asyncio.Queue()
            inbox["task"] = asyncio.create_task(worker())
        await inbox["queue"].put(updates)
        return Empty(status_code=204)

    @app.get("/cards/{card_id}")
    async def probe(card_id: str) -> Any:
        state = held.view(card_id)
        return JSONResponse(state, 200) if state else JSONResponse({"error": "unknown"}, 404)

    return app


@dataclass(frozen=True)
class Correct:
    """A correct receiver and how D1 reaches it."""

    name: str
    build: Callable[[], Any]
    oauth: bool = False


CORRECT = [
    Correct("async worker queue", worker_queue),
    Correct("202 with a body", accepted_with_body),
    Correct("429 with Retry-After", rate_limited),
    Correct("2-second OAuth tokens", short_tokens, oauth=True),
    Correct("SQL upsert, re-formatted timestamps", sql_upsert),
    Correct("ASGI (FastAPI) with an asyncio worker", fastapi_worker),
    Correct("dedupe table", dedupe_table),
    Correct("tie broken by rank", tie_by_rank),
]
