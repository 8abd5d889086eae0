"""The inbound paths ``d1sim serve`` answers, as OpenAPI 3.1 path items, and the helpers that
build path items (used by :mod:`d1sim.contracts.openapi.documents` and ``.admin``).

The inbound API (``/banking/v1``) answers errors in D1's ``{"errorCode", "error"}`` shape; the
admin API (``/_sim``, in :mod:`d1sim.contracts.openapi.admin`) in ``application/problem+json``.
"""

from __future__ import annotations

from typing import Any

from d1sim.contracts.protocol import BANKING_PREFIX as BANKING
from d1sim.contracts.protocol import SCENARIO_HEADER

CARDS = BANKING + "/issuers/{issuerId}/physicalCards"


def ref(name: str) -> dict[str, str]:
    """A reference to ``components/schemas/<name>``."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"content": {media: {"schema": schema}}}


def answer(description: str, schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    """A response object with one JSON body."""
    return {"description": description, **json_body(schema, media)}


def path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def query_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


ISSUER_ID = path_param("issuerId", {"type": "string", "minLength": 10, "maxLength": 10})
CARD_ID = path_param("cardId", ref("InboundProductionOrder/$defs/cardId"))
D1_ERRORS = {
    "400": "PARSING_ERROR, FIELD_INVALID_FORMAT or FIELD_INVALID_VALUE; `error` names the field.",
    "401": "AUTHORIZER_UNAUTHORIZED: no, wrong or expired token, or one of another issuer.",
    "404": "ISSUER_NOT_FOUND, CARD_NOT_FOUND or RESOURCE_NOT_FOUND.",
    "413": "PAYLOAD_TOO_LARGE.",
}


def d1_errors(*statuses: str) -> dict[str, Any]:
    """D1-shaped error responses for ``statuses`` (409 included when asked)."""
    texts = {**D1_ERRORS, "409": "INVALID_CARD_STATE: the card has shipped, failed or is cancelled."}
    return {s: answer(texts[s], ref("D1Error")) for s in statuses}


def inbound_schemas() -> dict[str, Any]:
    """The inbound API's own answer shapes."""
    operation_id = {"type": "string"}
    return {
        "D1Error": {
            "type": "object",
            "required": ["errorCode", "error"],
            "properties": {
                "errorCode": {"type": "string"},
                "error": {"type": "string", "description": "The field at fault, or a short text."},
                "message": {"type": "string", "description": "d1sim's extra, for humans."},
            },
        },
        "TokenResponse": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in"],
            "properties": {
                "access_token": {"type": "string"},
                "token_type": {"const": "Bearer"},
                "expires_in": {"type": "string", "pattern": "^[0-9]+$"},
                "scope": {"type": "string"},
                "expires_at": ref("Types/$defs/dateTime"),
            },
        },
        "OrderAccepted": {"type": "object", "required": ["operationId"], "properties": {"operationId": operation_id}},
        "BatchAccepted": {
            "type": "object",
            "required": ["operations"],
            "properties": {"operations": {"type": "array", "items": ref("BatchAcceptedItem")}},
        },
        "BatchAcceptedItem": {
            "type": "object",
            "required": ["cardId", "operationId"],
            "properties": {"cardId": ref("InboundProductionOrder/$defs/cardId"), "operationId": operation_id},
        },
        "ProductionStatus": {
            "type": "object",
            "required": ["operations"],
            "properties": {"operations": {"type": "array", "maxItems": 1, "items": ref("Operation")}},
        },
    }


def token_path() -> dict[str, Any]:
    """``POST /banking/v1/oauth2/token``."""
    form = {
        "type": "object",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"const": "client_credentials"},
            "client_id": {"type": "string"},
            "client_secret": {"type": "string"},
            "scope": {"type": "string"},
        },
    }
    return {
        "post": {
            "operationId": "issueToken",
            "summary": "Client credentials grant: a bearer token for 15 minutes.",
            "security": [{"clientBasic": []}, {}],
            "requestBody": {"required": True, **json_body(form, "application/x-www-form-urlencoded")},
            "responses": {"200": answer("The token.", ref("TokenResponse")), **d1_errors("400", "401")},
        }
    }


def inbound_call(op_id: str, summary: str, ok: str, ok_schema: str, **extra: Any) -> dict[str, Any]:
    """One inbound operation with D1's bearer and error answers."""
    errors = d1_errors(*extra.pop("errors", ("400", "401", "404")))
    return {
        "operationId": op_id,
        "summary": summary,
        "security": [{"d1Bearer": []}, {}],
        **extra,
        "responses": {ok: answer(summary, ref(ok_schema)), **errors},
    }


def inbound_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``/banking/v1`` path items and the schemas they add."""
    scenario = {"name": SCENARIO_HEADER, "in": "header", "required": False, "schema": {"type": "string"}}
    single = [ISSUER_ID, CARD_ID]
    paths = {
        BANKING + "/oauth2/token": token_path(),
        CARDS + "/{cardId}/operations:production": {"post": inbound_call(
            "orderCard", "Order one card.", "202", "OrderAccepted", parameters=[*single, scenario],
            requestBody={"required": True, **json_body(ref("InboundProductionOrder"))},
            errors=("400", "401", "404", "413"))},
        CARDS + "/operations:production": {"post": inbound_call(
            "orderCards", "Order 1-1000 cards, checked as a whole.", "202", "BatchAccepted",
            parameters=[ISSUER_ID, scenario],
            requestBody={"required": True, **json_body(ref("InboundProductionBatch"))},
            errors=("400", "401", "404", "413"))},
        CARDS + "/{cardId}/productionStatus": {"get": inbound_call(
            "productionStatus", "The operation a converged receiver holds.", "200", "ProductionStatus",
            parameters=single)},
        CARDS + "/{cardId}/operations:cancelProduction": {"post": inbound_call(
            "cancelProduction", "Pull & change: cancel the card's newest order.", "202", "OrderAccepted",
            parameters=single, requestBody={"required": False, **json_body({"type": "object"})},
            errors=("400", "401", "404", "409"))},
    }
    return paths, inbound_schemas()
