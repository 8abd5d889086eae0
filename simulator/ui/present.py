"""How the UI writes values: RFC 3339 times, pretty bodies, request headers with secrets masked.

The outbox keeps the headers each attempt sent, credentials masked. Attempts recorded before it
did (schema version 2 and older) show headers rebuilt from the run's (or issuer's) public auth
settings instead, labelled as such.

Example::

    >>> format_time(0.0), format_offset(90.5)
    ('1970-01-01T00:00:00.000Z', '+90.5 s')
    >>> request_headers("corr-1", "r-1", 3, {"auth": {"mode": "static", "token": "***"}})["Authorization"]
    'Bearer ***'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from d1sim.simulator.redaction import MASK, mask_headers  # one mask for every credential d1sim shows
from d1sim.simulator.ui.queries import AttemptRow
from d1sim.simulator.ui.results import rfc3339

EXCERPT = 500


def format_time(moment: float | None) -> str:
    """A Unix time as RFC 3339 UTC with milliseconds; an em dash for none."""
    return "—" if moment is None else rfc3339(moment)


def format_offset(seconds: float) -> str:
    """A virtual time known only relative to the run's start."""
    return f"+{seconds:g} s"


def pretty_body(body: bytes) -> str:
    """Indented JSON, or the text as is when the body is not JSON (a deliberately broken one)."""
    try:
        return json.dumps(orjson.loads(body), indent=2, ensure_ascii=False)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace") if body else "(empty body)"


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """At most ``limit`` characters of a response body, and a note when empty."""
    if not text:
        return "(empty body)"
    return text if len(text) <= limit else text[:limit] + f" … ({len(text)} characters)"


def answer(status: int | None, error: str | None) -> str:
    """``503``, ``timeout: ...`` or an em dash: the last answer of a delivery."""
    if status is not None:
        return str(status)
    return error or "—"


def request_headers(
    correlation_id: str, run_id: str, seq: int, settings: Mapping[str, Any]
) -> dict[str, str]:
    """The headers each POST of this delivery carried, credentials masked.

    ``settings`` is a replay run's options (``auth.mode``, ``signed``) or a mock D1 issuer's
    settings (``auth.type``, ``signSecret``).
    """
    headers = {"Content-Type": "application/json", "x-correlation-id": correlation_id}
    raw = settings.get("auth")
    auth: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    mode = str(auth.get("mode") or auth.get("type") or "none")
    if mode != "none":
        headers["Authorization"] = f"Bearer {MASK}"
    if settings.get("signed") or settings.get("signSecret"):
        headers |= {"webhook-id": f"msg_{run_id}_{seq}", "webhook-timestamp": "(time of the attempt)",
                    "webhook-signature": f"v1,{MASK}"}
    return headers


@dataclass(frozen=True, slots=True)
class HeaderSection:
    """The request headers of one attempt, as the delivery page shows them."""

    title: str
    note: str
    headers: tuple[tuple[str, str], ...]
    rebuilt: bool  # True: not stored, rebuilt from the settings


def attempt_headers(attempts: Sequence[AttemptRow], rebuilt: Mapping[str, str]) -> list[HeaderSection]:
    """One section per attempt: the headers it sent, or ``rebuilt`` where none were stored."""
    if not attempts:
        return [HeaderSection("Not sent yet", "Rebuilt from the run's settings; credentials are masked.",
                              tuple(rebuilt.items()), True)]
    return [_section(a, rebuilt) for a in attempts]


def _section(attempt: AttemptRow, rebuilt: Mapping[str, str]) -> HeaderSection:
    title = f"Attempt {attempt.number}"
    if attempt.request_headers is None:
        return HeaderSection(title, "Recorded before d1sim kept each attempt's headers: rebuilt from "
                             "the run's settings; credentials are masked.", tuple(rebuilt.items()), True)
    if not attempt.request_headers:
        return HeaderSection(title, "No request went out (see the attempt's error).", (), False)
    return HeaderSection(title, "As sent; credentials are masked.", mask_headers(attempt.request_headers), False)
