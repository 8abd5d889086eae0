"""The inbound API the mock D1 serves to an issuer's backend (d1-produce.md section 8).

Under ``/banking/v1``:

- ``POST /oauth2/token`` -- client credentials (HTTP Basic or form) -> a bearer token, 15 min;
- ``POST /issuers/{issuerId}/physicalCards/{cardId}/operations:production`` -> 202 operationId;
- ``POST /issuers/{issuerId}/physicalCards/operations:production`` -- ``{"cards": [...]}``, 1-1000
  orders each with its cardId -> 202 ``{"operations": [{"cardId", "operationId"}, ...]}``;
- ``GET /issuers/{issuerId}/physicalCards/{cardId}/productionStatus`` -> ``{"operations": [...]}``;
- ``POST /issuers/{issuerId}/physicalCards/{cardId}/operations:cancelProduction`` -> 202.

Every rejection is D1's ``{"errorCode", "error"}`` (plus a ``message`` for humans).
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import orjson
from flask import Flask, Response, request

from d1sim.contracts.payloads.inbound import (
    FORMAT,
    PARSING,
    VALUE,
    InboundError,
    check_batch,
    check_card_id,
    check_issuer_id,
    check_order,
)
from d1sim.simulator.d1.app import BANKING, D1Server, d1_error, json_response
from d1sim.simulator.d1.cancel import CancelRefused, cancel_order, operations_in
from d1sim.simulator.d1.config import IssuerSettings
from d1sim.simulator.d1.orders import (
    SCENARIO_HEADER,
    ScenarioChoiceError,
    choose_scenario,
    held_operation,
)
from d1sim.simulator.d1.store import OrderRecord

CARDS = BANKING + "/issuers/<issuer_id>/physicalCards"
UNAUTHORIZED = "AUTHORIZER_UNAUTHORIZED"


class D1Error(Exception):
    """Answer with D1's error body."""

    def __init__(self, status: int, code: str, error: str, message: str | None = None) -> None:
        super().__init__(message or error)
        self.status, self.code, self.error, self.message = status, code, error, message

    @classmethod
    def bad(cls, problem: InboundError) -> D1Error:
        return cls(400, problem.code, problem.field, problem.message)

    def response(self) -> Response:
        return d1_error(self.status, self.code, self.error, self.message)


class Inbound:
    """The inbound views over one :class:`D1Server`."""

    def __init__(self, server: D1Server) -> None:
        self.server = server

    # -- helpers ------------------------------------------------------------------------------

    def _issuer(self, issuer_id: str) -> IssuerSettings:
        """The path's issuer, once the call is authorized for it."""
        if (problem := check_issuer_id(issuer_id)) is not None:
            raise D1Error.bad(problem)
        settings = self.server.issuers.get(issuer_id)
        if settings is None:
            raise D1Error(404, "ISSUER_NOT_FOUND", "issuerId", f"unknown issuer {issuer_id}")
        if settings.require_token:
            auth = request.authorization
            token = auth.token if auth is not None and auth.type == "bearer" else None
            owner = self.server.token_issuer(token) if token else None
            if owner is None:
                raise D1Error(401, UNAUTHORIZED, "missing, invalid or expired bearer token")
            if owner != issuer_id:
                raise D1Error(401, UNAUTHORIZED, f"the token was not issued for issuer {issuer_id}")
        return settings

    @staticmethod
    def _card(card_id: str) -> str:
        if (problem := check_card_id(card_id)) is not None:
            raise D1Error.bad(problem)
        return card_id

    @staticmethod
    def _body(limit: int, optional: bool = False) -> Any:
        request.max_content_length = limit
        raw = request.get_data(cache=False)
        if optional and not raw.strip():
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise D1Error(400, PARSING, "body", f"the body is not JSON: {exc}") from None

    def _check(self, issuer: IssuerSettings, card_id: str, body: dict[str, Any], where: str) -> str:
        """The order's scenario, once nothing stands in its way (a batch checks every card first)."""
        request_id = body.get("issuerRequestId")
        if request_id is not None:
            earlier = self.server.store.order_for_request(issuer.issuer_id, request_id)
            if earlier is not None:  # idempotent: the earlier order stands as it was
                return self._same_card(earlier, card_id, where).scenario
        try:
            return choose_scenario(request.headers.get(SCENARIO_HEADER), request_id, issuer.default_scenario)
        except ScenarioChoiceError as exc:
            error = exc.error
            raise D1Error(400, error.code, where + error.field, error.message) from None

    def _accept(self, issuer: IssuerSettings, card_id: str, body: dict[str, Any], scenario: str) -> OrderRecord:
        """Store a new order (or return the one its issuerRequestId made) and queue its planning."""
        server, request_id = self.server, body.get("issuerRequestId")
        order = OrderRecord(
            str(uuid.uuid4()),
            issuer.issuer_id,
            card_id,
            request_id,
            scenario,
            secrets.randbelow(2**31),
            server.issuers.now(issuer.issuer_id),
            time.time(),
        )
        stored = server.store.add_order(order)
        if stored is order:
            server.planner.submit(order)
        return self._same_card(stored, card_id)

    @staticmethod
    def _same_card(order: OrderRecord, card_id: str, where: str = "") -> OrderRecord:
        if order.card_id != card_id:
            raise D1Error(
                400,
                VALUE,
                where + "issuerRequestId",
                f"issuerRequestId {order.request_id} was already used for another card",
            )
        return order

    # -- views --------------------------------------------------------------------------------

    def token(self) -> Response:
        """``POST /banking/v1/oauth2/token``: client credentials grant."""
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            client_id, secret = auth.username or "", auth.password or ""
        else:
            client_id, secret = (
                request.form.get("client_id", ""),
                request.form.get("client_secret", ""),
            )
        issuer_id = self.server.store.client_issuer(client_id, secret) if client_id else None
        if issuer_id is None:
            return d1_error(401, UNAUTHORIZED, "invalid client credentials")
        if request.form.get("grant_type") != "client_credentials":
            return d1_error(400, VALUE, "grant_type", "only client_credentials is supported")
        answer = json_response(self.server.issue_token(issuer_id, request.form.get("scope", "")))
        answer.headers["Cache-Control"] = "no-store"
        return answer

    def order(self, issuer_id: str, card_id: str) -> Response:
        """Order one card: 202 with the operationId every notification of it will carry."""
        issuer = self._issuer(issuer_id)
        self._card(card_id)
        body = self._body(self.server.settings.order_limit)
        if (problem := check_order(body)) is not None:
            raise D1Error.bad(problem)
        order = self._accept(issuer, card_id, body, self._check(issuer, card_id, body, ""))
        return json_response({"operationId": order.operation_id}, 202)

    def batch(self, issuer_id: str) -> Response:
        """Order 1-1000 cards; checked as a whole before any is accepted."""
        issuer = self._issuer(issuer_id)
        body = self._body(self.server.settings.batch_limit)
        if (problem := check_batch(body)) is not None:
            raise D1Error.bad(problem)
        cards = body["cards"]
        scenarios = [self._check(issuer, c["cardId"], c, f"cards[{i}].") for i, c in enumerate(cards)]
        orders = [self._accept(issuer, c["cardId"], c, s) for c, s in zip(cards, scenarios, strict=True)]
        ops = [{"cardId": o.card_id, "operationId": o.operation_id} for o in orders]
        return json_response({"operations": ops}, 202)

    def status(self, issuer_id: str, card_id: str) -> Response:
        """The operation a converged receiver holds, from what was sent so far."""
        self._issuer(issuer_id)
        orders = self.server.store.card_orders(issuer_id, self._card(card_id))
        if not orders:
            raise D1Error(404, "CARD_NOT_FOUND", "cardId", f"no order for card {card_id}")
        sent = [op for o in orders if o.run_id for op in operations_in(self.server.outbox.sent(o.run_id))]
        held = held_operation(sent, card_id)
        return json_response({"operations": [held] if held is not None else []})

    def cancel(self, issuer_id: str, card_id: str) -> Response:
        """Pull & change: end the card's newest order with CARD_PROD_CANCELED unless shipped."""
        self._issuer(issuer_id)
        order = self.server.store.latest_order(issuer_id, self._card(card_id))
        if order is None:
            raise D1Error(404, "CARD_NOT_FOUND", "cardId", f"no order for card {card_id}")
        if not isinstance(self._body(self.server.settings.order_limit, optional=True), dict):
            raise D1Error(400, FORMAT, "body", "the body, when given, is a JSON object")
        order = self.server.planner.ensure_planned(order)
        if order.canceled:
            raise D1Error(409, "INVALID_CARD_STATE", "cardId", f"card {card_id} is already cancelled")
        server = self.server
        try:
            cancel_order(order, server.dispatcher, server.outbox, server.store, server.issuers)
        except CancelRefused as exc:
            raise D1Error(exc.status, exc.code, "cardId", str(exc)) from None
        return json_response({"operationId": order.operation_id}, 202)


def add_inbound_routes(app: Flask, server: D1Server) -> None:
    """Mount the inbound API on ``app``."""
    views = Inbound(server)
    app.add_url_rule(BANKING + "/oauth2/token", view_func=views.token, methods=["POST"])
    app.add_url_rule(CARDS + "/<card_id>/operations:production", view_func=views.order, methods=["POST"])
    app.add_url_rule(CARDS + "/operations:production", view_func=views.batch, methods=["POST"])
    app.add_url_rule(CARDS + "/<card_id>/productionStatus", view_func=views.status, methods=["GET"])
    app.add_url_rule(CARDS + "/<card_id>/operations:cancelProduction", view_func=views.cancel, methods=["POST"])
    app.register_error_handler(D1Error, lambda exc: exc.response())
