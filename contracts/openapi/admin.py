"""The admin API ``d1sim serve`` answers (``/_sim``), as OpenAPI 3.1 path items: a table of calls,
one row each, with problem+json errors; and the schemas only the admin API uses (the planning
job, the body of a ``PUT`` issuer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from d1sim.contracts.notification.documents import bundled_names
from d1sim.contracts.openapi.paths import answer, json_body, path_param, query_param, ref
from d1sim.contracts.protocol import ADMIN_PREFIX as ADMIN
from d1sim.contracts.scenario.loading import BUNDLED_PACKAGE


@dataclass(frozen=True)
class AdminCall:
    """One ``/_sim`` call: where, what it does, its success status, body and query parameters."""

    path: str
    method: str
    op_id: str
    summary: str
    ok: str = "200"
    body: dict[str, Any] | None = None
    query: tuple[str, ...] = ()


def obj(**properties: Any) -> dict[str, Any]:
    """An object schema with these properties."""
    return {"type": "object", "properties": properties}


TEXT, PAGE = {"type": "string"}, ("limit", "offset")
# What the clock can surely be moved by (the server takes any duration up to 3650 days).
SHORT_DURATION = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": 315_360_000},
        {"type": "string", "pattern": "^(?:[0-9]{1,3}[dhm]|[0-9]{1,6}(?:s|ms))$"},
    ],
    "description": "90s, 4h, 2d, 500ms or seconds; at most 3650 days",
}
DELIVERY_STATES = ["pending", "delivered", "dead"]  # the outbox's states
SINCE = {
    "anyOf": [
        {"type": "number", "minimum": -1e12, "maximum": 1e12, "description": "Unix seconds"},
        {"type": "string", "format": "date-time"},
        SHORT_DURATION["anyOf"][1],
    ],
    "description": "an ISO 8601 time, a duration ago (2h), or Unix seconds",
}
ADMIN_CALLS = (
    AdminCall("", "get", "simIndex", "Issuers, scenarios, planning backlog, dispatcher counters."),
    AdminCall("/scenarios", "get", "simScenarios", "The bundled scenarios."),
    AdminCall("/issuers", "get", "simIssuers", "Every issuer (secrets as ***)."),
    AdminCall("/issuers/{issuerId}", "get", "simIssuer", "One issuer (secrets as ***)."),
    AdminCall("/issuers/{issuerId}", "put", "simPutIssuer", "Register (201) or update (200) an issuer.",
              body=ref("SimIssuerSettings")),
    AdminCall("/issuers/{issuerId}/credentials", "post", "simCredentials", "Mint inbound client credentials.",
              "201", obj(clientId=TEXT)),
    AdminCall("/issuers/{issuerId}/pause", "post", "simPause", "Stop the issuer's clock and deliveries."),
    AdminCall("/issuers/{issuerId}/resume", "post", "simResume", "Restart the issuer's clock and deliveries."),
    AdminCall("/issuers/{issuerId}/runs", "post", "simStartRun",
              "Ask for a run of a bundled or uploaded scenario (no body: the issuer's defaultScenario); "
              "it is planned in the background: poll the job at Location.", "202"),
    AdminCall("/jobs/{jobId}", "get", "simJob", "A run asked for: planning, planned (runId) or failed (problem)."),
    AdminCall("/clock/advance", "post", "simAdvance", "Move every issuer's clock, or one's, forward.",
              body={**obj(by=SHORT_DURATION, issuerId=TEXT), "required": ["by"]}),
    AdminCall("/runs", "get", "simRuns", "Runs with delivery counts, newest first.", query=("issuerId", *PAGE)),
    AdminCall("/runs/{runId}", "get", "simRun", "One run."),
    AdminCall("/runs/{runId}/deliveries", "get", "simRunDeliveries", "A run's deliveries.",
              query=("state", *PAGE)),
    AdminCall("/cards", "get", "simCards", "Orders, newest first, with the status sent so far.",
              query=("issuerId", *PAGE)),
    AdminCall("/deliveries/{deliveryId}", "get", "simDelivery", "One delivery with its body and attempts."),
    AdminCall("/deliveries/{deliveryId}/resend", "post", "simResend", "Send one delivery again now.", "202"),
    AdminCall("/deliveries/recover", "post", "simRecover", "Send again every dead delivery last tried since then.",
              "202", body=obj(since=SINCE, issuerId=TEXT)),
    AdminCall("/deliveries/replay", "post", "simReplay", "Send again now everything never delivered.",
              "202", body=obj(issuerId=TEXT)),
)
ADMIN_PARAMS: dict[str, dict[str, Any]] = {
    "issuerId": {"type": "string", "minLength": 10, "maxLength": 10},
    "runId": {"type": "string"},
    "jobId": {"type": "string"},
    "deliveryId": {"type": "integer"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
    "offset": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    "state": {"enum": DELIVERY_STATES},
}
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}


MAX_SEED = 2**63 - 1
MAX_YAML = 64 * 1024  # characters of an uploaded scenario (its UTF-8 bytes are checked when planned)
START_RUN_PROBLEMS = {
    status: answer(text, ref("Problem"), "application/problem+json")
    for status, text in (
        ("413", "The body is larger than the server takes (16 MiB)."),
        ("422", "An uploaded scenario of more than 65,536 characters (one over 64 KiB of UTF-8 fails its job)."),
        ("429", "Every planning slot is taken; try again after Retry-After seconds."),
    )
}
JOB = {
    "type": "object",
    "required": ["jobId", "issuerId", "created", "state"],
    "properties": {
        "jobId": {"type": "string"},
        "issuerId": {"type": "string"},
        "created": {"type": "string", "format": "date-time"},
        "state": {"enum": ["planning", "planned", "failed"]},
        "runId": {"type": ["string", "null"], "description": f"planned: GET {ADMIN}/runs/{{runId}}"},
        "scenario": {"type": ["string", "null"]},
        "seed": {"type": ["integer", "null"]},
        "deliveries": {"type": ["integer", "null"], "description": "planned: how many the run sends"},
        "problem": {
            "anyOf": [{"type": "null"}, ref("Problem")],
            "description": "failed: why, as the problem a synchronous answer would have been -- 400 "
            "an invalid scenario, 422 one over the upload limits or the planning budget",
        },
    },
}


def run_body() -> dict[str, Any]:
    """What ``POST .../runs`` takes: a bundled scenario's name, or an uploaded scenario's YAML."""
    scenario = {"enum": bundled_names(BUNDLED_PACKAGE, ".yaml"), "description": "a bundled scenario"}
    seed = {"type": "integer", "minimum": 0, "maximum": MAX_SEED}
    yaml = {
        "type": "string",
        "maxLength": MAX_YAML,
        "contentMediaType": "application/yaml",
        "contentSchema": ref("Scenario"),
        "description": "an uploaded scenario (at most 64 KiB); when given, scenario is not used",
    }
    return {
        "content": {
            "application/json": {"schema": obj(scenario=scenario, seed=seed, yaml=yaml)},
            "application/yaml": {"schema": ref("Scenario")},
        }
    }


def admin_operation(call: AdminCall) -> dict[str, Any]:
    """One ``/_sim`` operation: parameters, body, success and problem+json answers."""
    names = [part[1:-1] for part in call.path.split("/") if part.startswith("{")]
    problems = {
        status: answer(text, ref("Problem"), "application/problem+json")
        for status, text in (
            ("400", "Bad request."),
            ("401", "Missing or wrong admin token."),
            ("403", "A webhook or token URL off this machine, on a server run with --loopback-webhooks."),
            ("404", "Not found."),
        )
    }
    operation: dict[str, Any] = {
        "operationId": call.op_id,
        "summary": call.summary,
        "tags": ["admin"],
        "security": [{"adminBearer": []}, {}],
        "parameters": [path_param(n, ADMIN_PARAMS[n]) for n in names]
        + [query_param(n, ADMIN_PARAMS[n]) for n in call.query],
        "responses": {call.ok: answer(call.summary, {"type": "object"}), **problems},
    }
    if call.op_id == "simPutIssuer":
        operation["responses"]["201"] = answer("Registered.", {"type": "object"})
        operation["responses"]["409"] = answer(
            "A TLS file the settings name is not on the server: put it there and send them again.",
            ref("Problem"), "application/problem+json")
    if call.op_id == "simStartRun":
        location = {"description": "The job: GET it until its state is planned or failed.",
                    "schema": {"type": "string"}}
        accepted = {**answer("Accepted: the run is being planned.", ref("Job")), "headers": {"Location": location}}
        operation["responses"].update({"202": accepted, **START_RUN_PROBLEMS})
        operation["requestBody"] = {"required": False, **run_body()}
    if call.op_id == "simJob":
        operation["responses"]["200"] = answer(call.summary, ref("Job"))
    if call.body is not None:
        operation["requestBody"] = {"required": call.op_id in ("simPutIssuer", "simAdvance"),
                                    **json_body(call.body)}
    return operation


def issuer_settings(issuer: dict[str, Any]) -> dict[str, Any]:
    """The body of ``PUT /_sim/issuers/{issuerId}``: ``issuer`` (the ``SimIssuer`` component) as
    far as a schema can say what the server takes -- the id is the path's, the default scenario
    a bundled one. (A body may still repeat the path's issuerId; TLS files must exist: 409.)"""
    properties = {name: value for name, value in issuer["properties"].items() if name != "issuerId"}
    properties["defaultScenario"] = {**properties["defaultScenario"], "enum": bundled_names(BUNDLED_PACKAGE, ".yaml")}
    return {**issuer, "title": "An issuer's settings, as PUT", "properties": properties}


def admin_paths(issuer: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``/_sim`` path items (and ``GET /openapi.json``) and the schemas they add.

    ``issuer`` is the embedded ``SimIssuer`` schema the ``PUT`` body is made from.
    """
    paths: dict[str, Any] = {}
    for call in ADMIN_CALLS:
        paths.setdefault(ADMIN + call.path, {})[call.method] = admin_operation(call)
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "responses": {"200": answer("The OpenAPI document.", {"type": "object"})},
        }
    }
    return paths, {"Problem": PROBLEM, "Job": JOB, "SimIssuerSettings": issuer_settings(issuer)}
