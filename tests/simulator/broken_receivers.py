"""Deliberately broken receivers: the reference receiver with one realistic bug each.

Request-level bugs are WSGI middleware in front of the reference app (it sees the raw POST and
may answer instead); state-level bugs replace the reference store with a subclass that gets one
rule wrong. Every receiver requires the bearer token :data:`TOKEN` unless its bug is about auth.
Each row names the check that must catch the bug.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from werkzeug.wrappers import Response

from d1sim.contracts.lifecycle.convergence import order_key
from d1sim.contracts.lifecycle.model import load_lifecycle
from d1sim.contracts.notification.validation import validate_notification
from d1sim.simulator.receiver.app import ReceiverConfig, create_app
from d1sim.simulator.receiver.store import ReceiverStore

TOKEN = "s3cret-token"
MODEL = load_lifecycle()
WSGIApp = Callable[..., Any]
# Returns None to let the reference receiver answer, or the answer to give instead.
Hook = Callable[[dict[str, Any], bytes], Response | None]


class Tamper:
    """WSGI middleware: ``hook(environ, body)`` sees notification POSTs first.

    Application bugs (``after_auth``) only see requests with the right token, as code behind
    an auth layer would; an auth bug sees every request.
    """

    def __init__(self, app: WSGIApp, hook: Hook, *, after_auth: bool = True) -> None:
        self.app, self.hook, self.after_auth = app, hook, after_auth

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["REQUEST_METHOD"] != "POST" or not environ["PATH_INFO"].startswith(
            "/notifications/"
        ):
            return self.app(environ, start_response)
        if self.after_auth and environ.get("HTTP_AUTHORIZATION") != f"Bearer {TOKEN}":
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)  # the reference app reads it again
        answer = self.hook(environ, body)
        return (answer or self.app)(environ, start_response)


def reference(token: str | None = TOKEN) -> WSGIApp:
    """The conforming reference receiver (in-memory), requiring ``token`` when given."""
    return create_app(ReceiverConfig(bearer_token=token))


def tampered(hook: Hook, *, after_auth: bool = True) -> Callable[[], WSGIApp]:
    return lambda: Tamper(reference(), hook, after_auth=after_auth)


def with_store(store_class: type[ReceiverStore]) -> Callable[[], WSGIApp]:
    def build() -> WSGIApp:
        app = reference()
        receiver = app.extensions["d1sim.receiver"]
        receiver.store.close()
        receiver.store = store_class()
        return app

    return build


def _operations(body: bytes) -> list[Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    ops = parsed.get("operations") if isinstance(parsed, dict) else None
    return ops if isinstance(ops, list) else []


def _error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status, mimetype="application/json")


# -- request-level bugs ---------------------------------------------------------------------


def rejects_unknown_status(environ: dict[str, Any], body: bytes) -> Response | None:
    """Validates details.status against the statuses known when the receiver was written."""
    for op in _operations(body):
        details = op.get("details") if isinstance(op, dict) else None
        status = details.get("status") if isinstance(details, dict) else None
        if isinstance(status, str) and not MODEL.is_known(status):
            return _error(400, f"invalid status {status}")
    return None


def rejects_unknown_fields(environ: dict[str, Any], body: bytes) -> Response | None:
    """Validates with additionalProperties: false, so any new D1 field is refused."""
    try:
        problems = validate_notification(orjson.loads(body), strict=True)
    except orjson.JSONDecodeError:
        return None
    if any(p.message.startswith("unknown field") for p in problems):
        return _error(400, "unexpected field")
    return None


def fails_on_batches(environ: dict[str, Any], body: bytes) -> Response | None:
    """Written for one operation per POST: a batch hits an unhandled case."""
    return _error(500, "expected exactly one operation") if len(_operations(body)) > 1 else None


def answers_500_to_non_json(environ: dict[str, Any], body: bytes) -> Response | None:
    """Lets the JSON parser's exception escape (a 500, so D1 retries it for ever)."""
    orjson.loads(body)
    return None


def accepts_non_json(environ: dict[str, Any], body: bytes) -> Response | None:
    """Swallows a parse error, logs it and answers 204: the notification is silently lost."""
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return Response(status=204)
    return None


def crashes_without_optional_field(environ: dict[str, Any], body: bytes) -> Response | None:
    """Computes days to ship from details.dueDate, assuming every prepared card has one."""
    for op in _operations(body):
        details = op["details"]
        if MODEL.is_known(details["status"]) and 1 <= MODEL.rank(details["status"]) <= 4:
            date.fromisoformat(details["dueDate"])  # KeyError when the optional field is absent
    return None


def crashes_on_invalid_json(environ: dict[str, Any], body: bytes) -> Response | None:
    """Reads the fields it needs before validating anything (TypeError/KeyError -> 500)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    for op in parsed["operations"]:
        _ = op["cardId"] + ":" + op["details"]["status"]
    return None


def answers_slowly(environ: dict[str, Any], body: bytes) -> Response | None:
    """Does its work synchronously before answering (0.5 s)."""
    time.sleep(0.5)
    return None


def accepts_any_token(environ: dict[str, Any], body: bytes) -> Response | None:
    """Checks that a bearer token is present, never that it is the right one."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    if header.startswith("Bearer ") and len(header) > len("Bearer "):
        environ["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return None


def conflicts_on_duplicates() -> WSGIApp:
    """A unique key on (operationId, status, lastUpdatedAt) turned into 409 Conflict."""
    seen: set[tuple[Any, ...]] = set()

    def hook(environ: dict[str, Any], body: bytes) -> Response | None:
        keys = {_op_key(op) for op in _operations(body) if isinstance(op, dict)}
        if keys & seen:
            return _error(409, "operation already received")
        seen.update(keys)
        return None

    return Tamper(reference(), hook)


def _op_key(op: Mapping[str, Any]) -> tuple[Any, ...]:
    details = op.get("details") if isinstance(op.get("details"), dict) else {}
    shipment = details.get("shipment") if isinstance(details.get("shipment"), dict) else {}
    return op.get("operationId"), details.get("status"), shipment.get("lastUpdatedAt")


def crashes_on_other_operations(environ: dict[str, Any], body: bytes) -> Response | None:
    """Reads details.status of every operation, as if all were PRODUCE (KeyError -> 500)."""
    for op in _operations(body):
        if isinstance(op, dict) and "details" not in op:
            return _error(500, "KeyError: 'details'")
    return None


def parses_only_the_usual_timestamp(environ: dict[str, Any], body: bytes) -> Response | None:
    """Parses startTime with D1's usual format only (strptime ...%fZ): any other form -> 500."""
    for op in _operations(body):
        if isinstance(op, dict) and isinstance(op.get("startTime"), str):
            try:
                datetime.strptime(op["startTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
            except ValueError as exc:
                return _error(500, f"ValueError: {exc}")
    return None


def refuses_an_operation_twice_in_a_batch(environ: dict[str, Any], body: bytes) -> Response | None:
    """A unique index on (operationId, status) inside one transaction: 409 for a repeat."""
    keys = [_op_key(op) for op in _operations(body) if isinstance(op, dict)]
    return _error(409, "duplicate key in batch") if len(keys) != len(set(keys)) else None


# -- state-level bugs -----------------------------------------------------------------------


class LastArrivalWins(ReceiverStore):
    """Holds whatever arrives last, as if delivery were in order."""

    def _converge(self, op: Mapping[str, Any]) -> None:
        if self._tracked(op):
            self._db.execute(
                "INSERT OR REPLACE INTO cards (card_id, body) VALUES (?, ?)",
                (op["cardId"], orjson.dumps(op)),
            )


class FirstOperationOnly(ReceiverStore):
    """Reads ``operations[0]`` and ignores the rest of a batch."""

    def apply(self, operations: Sequence[Mapping[str, Any]]) -> int:
        return super().apply(operations[:1])


class UnknownStatusIsFinal(ReceiverStore):
    """Treats any status it does not know as terminal: the card is frozen from then on."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen: set[str] = set()

    def _converge(self, op: Mapping[str, Any]) -> None:
        status = op.get("details", {}).get("status")
        if isinstance(status, str) and not MODEL.is_known(status):
            self.frozen.add(op["cardId"])
        elif op.get("cardId") not in self.frozen:
            super()._converge(op)


class ShipmentsByArrival(ReceiverStore):
    """Orders statuses by rank, but takes each CARD_SHIPPED update as newer than the last."""

    def _converge(self, op: Mapping[str, Any]) -> None:
        row = self._db.execute(
            "SELECT body FROM cards WHERE card_id = ?", (op.get("cardId"),)
        ).fetchone()
        held = orjson.loads(row[0]) if row else None
        same_rank = held and self._tracked(op) and order_key(op)[:3] == order_key(held)[:3]
        if same_rank and MODEL.states[op["details"]["status"]].repeatable:
            self._db.execute(
                "UPDATE cards SET body = ? WHERE card_id = ?", (orjson.dumps(op), op["cardId"])
            )
        else:
            super()._converge(op)


class FirstOrderWins(ReceiverStore):
    """Keeps the first order of a card: a re-order (new operationId) is ignored."""

    def _converge(self, op: Mapping[str, Any]) -> None:
        row = self._db.execute(
            "SELECT body FROM cards WHERE card_id = ?", (op.get("cardId"),)
        ).fetchone()
        if row is None or orjson.loads(row[0]).get("operationId") == op.get("operationId"):
            super()._converge(op)


class StopsAtUnknownStatus(ReceiverStore):
    """Applies a batch in a loop that ends at the first status it does not know."""

    def apply(self, operations: Sequence[Mapping[str, Any]]) -> int:
        known = []
        for op in operations:
            status = op.get("details", {}).get("status") if isinstance(op.get("details"), dict) else None
            if op.get("operation") == "PRODUCE" and not MODEL.is_known(str(status)):
                break
            known.append(op)
        return super().apply(known)


# -- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Broken:
    """A broken receiver, the check that must catch it, and what the check run needs."""

    name: str
    build: Callable[[], WSGIApp]
    fails: str
    checks: tuple[str, ...] | None = None  # None: run every check
    timeout: float = 10.0


BROKEN: tuple[Broken, ...] = (
    Broken(
        "rejects unknown statuses", tampered(rejects_unknown_status), "tolerates_unknown_status"
    ),
    Broken("rejects unknown fields", tampered(rejects_unknown_fields), "tolerates_unknown_fields"),
    Broken("applies whatever arrives last", with_store(LastArrivalWins), "converges_out_of_order"),
    Broken(
        "applies only the first operation of a batch",
        with_store(FirstOperationOnly),
        "accepts_batches",
    ),
    Broken("fails on batches", tampered(fails_on_batches), "accepts_batches"),
    Broken("answers 409 to a duplicate", conflicts_on_duplicates, "idempotent_on_duplicates"),
    Broken("ignores auth", lambda: reference(token=None), "rejects_missing_auth"),
    Broken(
        "accepts any token", tampered(accepts_any_token, after_auth=False), "rejects_missing_auth"
    ),
    Broken(
        "answers 500 to a non-JSON body",
        tampered(answers_500_to_non_json),
        "rejects_malformed_json",
    ),
    Broken(
        "accepts a non-JSON body with 204", tampered(accepts_non_json), "rejects_malformed_json"
    ),
    Broken(
        "crashes when an optional field is missing",
        tampered(crashes_without_optional_field),
        "tolerates_minimal_payload",
    ),
    Broken(
        "crashes on schema-invalid JSON",
        tampered(crashes_on_invalid_json),
        "no_server_error_on_invalid",
    ),
    Broken(
        "treats an unknown status as final",
        with_store(UnknownStatusIsFinal),
        "tolerates_unknown_status",
    ),
    Broken(
        "orders shipment updates by arrival",
        with_store(ShipmentsByArrival),
        "converges_out_of_order",
    ),
    Broken(
        "answers slowly", tampered(answers_slowly), "responds_in_time", ("responds_in_time",), 0.2
    ),
    # One per feature of the contract the strategies explore beyond D1's usual shape.
    Broken("crashes on other operation kinds", tampered(crashes_on_other_operations),
           "accepts_batches"),
    Broken("parses only D1's usual timestamp form", tampered(parses_only_the_usual_timestamp),
           "accepts_valid_notification"),
    Broken("ignores a re-order of a card", with_store(FirstOrderWins), "converges_out_of_order"),
    Broken("refuses an operation twice in one batch",
           tampered(refuses_an_operation_twice_in_a_batch), "accepts_batches"),
    Broken("stops a batch at an unknown status", with_store(StopsAtUnknownStatus),
           "accepts_batches"),
)


def broken(name: str) -> Broken:
    """The row called ``name``."""
    return next(row for row in BROKEN if row.name == name)


def names() -> Iterator[str]:
    return (row.name for row in BROKEN)
