"""How the mock D1 answers: its URL prefixes, JSON bodies, D1-shaped errors and problem documents."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response

from d1sim.contracts.protocol import ADMIN_PREFIX, BANKING_PREFIX

BANKING = BANKING_PREFIX
ADMIN = ADMIN_PREFIX


def json_response(body: Any, status: int = 200, mimetype: str = "application/json") -> Response:
    """A JSON answer (orjson)."""
    return Response(orjson.dumps(body), status, mimetype=mimetype)


def problem_json(status: int, title: str, detail: str, slug: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem document (the admin API's errors, and a failed job's)."""
    slug = slug or title.lower().replace(" ", "-")
    return {"type": f"https://d1sim.dev/problems/{slug}", "title": title, "status": status, "detail": detail}


def problem(status: int, title: str, detail: str, slug: str | None = None) -> Response:
    """An RFC 9457 problem answer (the admin API's errors)."""
    return json_response(problem_json(status, title, detail, slug), status, "application/problem+json")


def d1_error(status: int, code: str, error: str, message: str | None = None) -> Response:
    """An inbound API error in D1's shape (``message`` is d1sim's extra for humans)."""
    body = {"errorCode": code, "error": error, **({"message": message} if message else {})}
    return json_response(body, status)
