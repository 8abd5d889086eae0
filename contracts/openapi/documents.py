"""Contracts for other tools: an OpenAPI 3.1 and an AsyncAPI 3.0 document built from ``schemas/``.

The shipped JSON Schemas are embedded under ``components/schemas`` (one component per file,
named after it: ``last-checkpoint.schema.json`` -> ``LastCheckpoint``), their ``$id`` and
``$schema`` dropped and every ``$ref`` rewritten to a pointer inside the document, so the
documents stand alone. Both are plain dicts; :mod:`d1sim.simulator.cli.export` prints them.

Example::

    doc = build_openapi()
    doc["webhooks"]["produceNotification"]["post"]["requestBody"]
"""

from __future__ import annotations

import copy
from typing import Any

from d1sim.contracts.notification.documents import load_document, package_version
from d1sim.contracts.openapi.admin import admin_paths
from d1sim.contracts.openapi.paths import inbound_paths
from d1sim.contracts.protocol import BANKING_PREFIX, WEBHOOK_PATH

NOTIFICATION_FILES = (
    "notification.schema.json",
    "operation.schema.json",
    "details.schema.json",
    "shipment.schema.json",
    "last-checkpoint.schema.json",
    "types.schema.json",
)
SERVER_FILES = (
    "inbound-production-order.schema.json",
    "inbound-production-batch.schema.json",
    "sim-issuer.schema.json",
    "scenario.schema.json",
)
CORRELATION_HEADER = "x-correlation-id"
D1_DELIVERY = (
    "D1 POSTs a notification when a card's production status changes; several operations may "
    "share one POST (bulk). Any 2xx is delivered. 408, 429, 5xx, timeouts and connection errors "
    "are retried with exponential backoff (Retry-After honoured); any other 4xx is permanent "
    "and the notification is not sent again."
)


def component_name(file_name: str) -> str:
    """``last-checkpoint.schema.json`` -> ``LastCheckpoint``."""
    stem = file_name.removesuffix(".schema.json")
    return "".join(part.capitalize() for part in stem.replace(".", "-").split("-"))


def rewrite_ref(ref: str, owner: str) -> str:
    """A ``$ref`` of a shipped schema (in component ``owner``) as a pointer in the document."""
    target, _, fragment = ref.partition("#")
    name = component_name(target.rsplit("/", 1)[-1]) if target else owner
    return f"#/components/schemas/{name}{fragment}"


def embed_schema(node: Any, owner: str) -> Any:
    """A copy of a schema with ``$id``/``$schema`` dropped and its ``$ref``s rewritten."""
    if isinstance(node, list):
        return [embed_schema(item, owner) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$id", "$schema"):
            continue
        out[key] = rewrite_ref(value, owner) if key == "$ref" and isinstance(value, str) else embed_schema(value, owner)
    return out


def embedded_schemas(files: tuple[str, ...]) -> dict[str, Any]:
    """The shipped schemas ``files`` as ``components/schemas`` entries."""
    return {component_name(f): embed_schema(load_document(f), component_name(f)) for f in files}


def webhook_responses() -> dict[str, Any]:
    """What an issuer's webhook answers, and what D1 makes of each answer."""
    return {
        "204": {"description": "Delivered (any 2xx counts as delivered)."},
        "2XX": {"description": "Delivered."},
        "408": {"description": "Request timeout: D1 retries with backoff."},
        "429": {"description": "Too many requests: D1 retries, honouring Retry-After."},
        "4XX": {"description": "Rejected for good: D1 does not retry (except 408 and 429)."},
        "5XX": {"description": "Server error: D1 retries with exponential backoff."},
    }


def webhook_operation() -> dict[str, Any]:
    """The ``produceNotification`` webhook: D1 -> issuer."""
    return {
        "operationId": "produceNotification",
        "summary": "PRODUCE notification (D1 -> issuer)",
        "description": f"Sent to the issuer at `{WEBHOOK_PATH}`. {D1_DELIVERY}",
        "parameters": [correlation_parameter()],
        "security": [{"issuerBearer": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Notification"}}},
        },
        "responses": webhook_responses(),
    }


def correlation_parameter() -> dict[str, Any]:
    """The optional ``x-correlation-id`` header D1 may send."""
    return {
        "name": CORRELATION_HEADER,
        "in": "header",
        "required": False,
        "description": "Optional correlation id of the notification.",
        "schema": {"type": "string"},
    }


def security_schemes(server_paths: bool) -> dict[str, Any]:
    """Bearer towards the issuer; with the server's paths, its token, client and admin schemes."""
    schemes: dict[str, Any] = {
        "issuerBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "D1's token towards the webhook: static, or fetched with OAuth2 client "
            "credentials from the issuer's token endpoint.",
        }
    }
    if server_paths:
        token = f"From POST {BANKING_PREFIX}/oauth2/token."
        schemes["d1Bearer"] = {"type": "http", "scheme": "bearer", "description": token}
        schemes["clientBasic"] = {"type": "http", "scheme": "basic", "description": "clientId:clientSecret."}
        schemes["adminBearer"] = {"type": "http", "scheme": "bearer", "description": "The --admin-token, when set."}
    return schemes


def build_openapi(server_paths: bool = True) -> dict[str, Any]:
    """The OpenAPI 3.1.0 document of the notification webhook and, optionally, of ``d1sim serve``.

    Args:
        server_paths: also describe every path the mock D1 answers (``/banking/v1``, ``/_sim``).

    Returns:
        A JSON-ready dict; the shipped schemas are under ``components/schemas``.
    """
    files = NOTIFICATION_FILES + (SERVER_FILES if server_paths else ())
    schemas = embedded_schemas(files)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Thales D1 PRODUCE (d1sim)",
            "version": package_version(),
            "description": "PRODUCE notifications D1 sends to an issuer"
            + (", and the API of d1sim's mock D1 (`d1sim serve`)." if server_paths else "."),
        },
        "webhooks": {"produceNotification": {"post": webhook_operation()}},
        "components": {"schemas": schemas, "securitySchemes": security_schemes(server_paths)},
    }
    if server_paths:
        doc["servers"] = [{"url": "http://127.0.0.1:8080", "description": "d1sim serve (default port)"}]
        paths, extra = inbound_paths()
        admin, admin_extra = admin_paths(schemas["SimIssuer"])
        doc["paths"] = {**paths, **admin}
        schemas.update({**extra, **admin_extra})
    return copy.deepcopy(doc)  # the path tables' shared parts stay the module's own


def build_asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the notification channel, from D1's point of view (send).

    Returns:
        A JSON-ready dict; the notification schemas are under ``components/schemas``.
    """
    message_ref = "#/channels/cardNotifications/messages/produceNotification"
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Thales D1 PRODUCE notifications (d1sim)",
            "version": package_version(),
            "description": D1_DELIVERY,
        },
        "defaultContentType": "application/json",
        "servers": {
            "issuer": {
                "host": "issuer.example",
                "protocol": "https",
                "description": "The issuer's webhook host (agreed at onboarding).",
                "security": [{"$ref": "#/components/securitySchemes/issuerBearer"}],
            }
        },
        "channels": {"cardNotifications": async_channel()},
        "operations": {
            "sendProduceNotification": {
                "action": "send",
                "summary": "D1 POSTs a PRODUCE notification to the issuer's webhook.",
                "channel": {"$ref": "#/channels/cardNotifications"},
                "messages": [{"$ref": message_ref}],
                "bindings": {"http": {"method": "POST", "bindingVersion": "0.3.0"}},
            }
        },
        "components": {
            "messages": {"produceNotification": async_message()},
            "schemas": embedded_schemas(NOTIFICATION_FILES),
            "securitySchemes": {"issuerBearer": security_schemes(False)["issuerBearer"]},
        },
    }


def async_channel() -> dict[str, Any]:
    """The issuer's webhook path as an AsyncAPI channel."""
    return {
        "address": WEBHOOK_PATH,
        "description": "The issuer's card notification webhook.",
        "parameters": {"issuerId": {"description": "The issuer's 10-character id."}},
        "servers": [{"$ref": "#/servers/issuer"}],
        "messages": {"produceNotification": {"$ref": "#/components/messages/produceNotification"}},
    }


def async_message() -> dict[str, Any]:
    """The notification message: JSON body, optional correlation header."""
    return {
        "name": "produceNotification",
        "title": "PRODUCE notification",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {CORRELATION_HEADER: {"type": "string", "description": "Optional correlation id."}},
        },
        "payload": {"$ref": "#/components/schemas/Notification"},
        "bindings": {"http": {"bindingVersion": "0.3.0"}},
    }
