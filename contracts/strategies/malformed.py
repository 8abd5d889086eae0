"""Bodies a receiver must refuse without a 5xx: schema-invalid JSON, and bytes that are not JSON.

Each invalid notification is a valid one with exactly one corruption, so the JSON pointer of the
problem is known in advance. The corruptions are tables (field kinds, bad values per kind):
adding a case is adding a row.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import urlencode

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from d1sim.contracts.lifecycle import load_lifecycle
from d1sim.contracts.notification.documents import load_document
from d1sim.contracts.problems import join_pointer
from d1sim.contracts.strategies.payloads import Notification, notifications


class InvalidNotification(NamedTuple):
    """A schema-invalid body and the JSON pointer that ``validate_notification`` reports for it."""

    body: Any
    pointer: str


# What each known field holds, per kind of object (decides which bad values apply).
FIELD_KINDS: dict[str, dict[str, str]] = {
    "operation": {
        "operationId": "id64",
        "operation": "open",
        "status": "closed",
        "startTime": "dateTime",
        "endTime": "dateTime",
        "cardId": "id48",
        "details": "object",
        "errorCode": "open",
        "error": "string",
        "inputFileName": "string",
        "issuerRequestId": "string",
    },
    "details": {
        "status": "open",
        "reason": "string",
        "consumerId": "string",
        "dueDate": "date",
        "productionSite": "string",
        "shipment": "object",
        "inputFileName": "string",
        "issuerRequestId": "string",
    },
    "shipment": {
        "carrier": "open",
        "trackingNumber": "string",
        "status": "open",
        "message": "string",
        "trackingUrl": "string",
        "estimatedDeliveryDate": "dateTime",
        "lastUpdatedAt": "dateTime",
        "lastCheckpoint": "object",
    },
    "lastCheckpoint": {
        "checkpointTime": "dateTime",
        "city": "string",
        "countryName": "string",
        "message": "string",
    },
}

MISSING = object()  # the corruption "delete this required field"

# Values that break each kind, most readable first (failures shrink to the first).
BAD_VALUES: dict[str, tuple[Any, ...]] = {
    "body": ([], "", 0, None, True),
    "array": ([], {}, "", 0, None),
    "object": ("", 0, None, []),
    "string": (0, None, True, [], {}),
    "open": ("", 0, None, []),  # open vocabularies still need a non-empty string
    "closed": ("DONE", "pending", "", 0, None),
    "id64": ("", "has space", "a" * 65, "slash/inside", "caf\u00e9", 0),
    "id48": ("", "has space", "a" * 49, "semi;colon", 0),
    "dateTime": (
        "2025-13-01T00:00:00Z",
        "2025-01-17 06:28:02Z",
        "2025-01-17T06:28:02",
        "2025-01-17",
        "17/01/2025 06:28",
        "2025-01-17T24:00:00Z",
        "",
        0,
    ),
    "date": ("17/01/2025", "2025-13-01", "2025-1-7", "tomorrow", "", 0),
}


def _required(kind: str, container: dict[str, Any]) -> frozenset[str]:
    names = {"operation": "operation.schema.json", "details": "details.schema.json"}
    required = set(load_document(names[kind])["required"]) if kind in names else set()
    if kind == "operation" and container.get("operation") == load_lifecycle().operation:
        required.add("details")  # the schema's if/then: PRODUCE operations need details
    return frozenset(required)


Site = tuple[Any, Any, str, bool, str]  # (parent, key, kind, required, pointer)


def _sites(body: Notification) -> Iterator[Site]:
    yield None, None, "body", False, ""
    yield body, "operations", "array", True, "/operations"
    for i, op in enumerate(body["operations"]):
        yield body["operations"], i, "object", False, join_pointer("/operations", i)
        yield from _field_sites("operation", op, join_pointer("/operations", i))


def _field_sites(kind: str, container: dict[str, Any], pointer: str) -> Iterator[Site]:
    required = _required(kind, container)
    for name, field_kind in FIELD_KINDS[kind].items():
        yield (
            container,
            name,
            field_kind,
            name in required and name in container,
            join_pointer(pointer, name),
        )
        inner = container.get(name)
        if field_kind == "object" and isinstance(inner, dict) and name in FIELD_KINDS:
            yield from _field_sites(name, inner, join_pointer(pointer, name))


def invalid_notifications() -> SearchStrategy[InvalidNotification]:
    """Schema-invalid JSON values, as ``(body, pointer)`` pairs (a :class:`InvalidNotification`).

    A valid notification of 1-3 operations with one corruption: a required field removed, a
    wrong type, an identifier breaking its pattern, a malformed date-time, an unknown operation
    status, an empty or missing ``operations``, or a body that is not an object. ``pointer`` is
    where ``validate_notification`` reports the problem ("" for the whole body).

    Example::

        @given(invalid_notifications())
        def test_no_5xx(case): assert receiver.post(case.body).status_code < 500
    """
    return _invalid_notifications(notifications(max_operations=3))


@st.composite
def _invalid_notifications(
    draw: DrawFn, bodies: SearchStrategy[Notification]
) -> InvalidNotification:
    body = draw(bodies)
    parent, key, kind, required, pointer = draw(st.sampled_from(list(_sites(body))))
    value = draw(st.sampled_from(((MISSING,) if required else ()) + BAD_VALUES[kind]))
    if parent is None:
        return InvalidNotification(copy.deepcopy(value), pointer)  # tables stay untouched
    if value is MISSING:
        del parent[key]
    else:
        parent[key] = copy.deepcopy(value)
    return InvalidNotification(body, pointer)


def _document(draw: DrawFn) -> bytes:
    return json.dumps(draw(notifications(max_operations=2))).encode()


def _truncated(draw: DrawFn) -> bytes:
    doc = _document(draw)  # no proper prefix of a JSON object is JSON: its brace never closes
    return doc[: draw(st.integers(1, len(doc) - 1))]


def _xml(draw: DrawFn) -> bytes:
    op = draw(notifications(max_operations=1))["operations"][0]
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in op.items() if isinstance(v, str))
    xml = f"<operations><operation>{fields}</operation></operations>"
    return f'<?xml version="1.0" encoding="UTF-8"?>{xml}'.encode()


def _form(draw: DrawFn) -> bytes:
    op = draw(notifications(max_operations=1))["operations"][0]
    return urlencode({k: v for k, v in op.items() if isinstance(v, str)}).encode()


def _invalid_utf8(draw: DrawFn) -> bytes:
    doc = _document(draw)
    # No encoded surrogates: Python's json decodes them (surrogatepass), so they are not portable.
    bad = draw(st.sampled_from((b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xe2\x82")))
    return doc[:2] + bad + doc[2:]  # inside the first key, after '{"', so no BOM is sniffed


def _almost_json(draw: DrawFn) -> bytes:
    doc = _document(draw)
    variants = (
        doc.replace(b'"', b"'"),
        doc[:-1] + b",}",
        doc + b"\n" + doc,
        doc[:-1] + b" // end\n}",
    )
    return draw(st.sampled_from(variants))


# One builder per kind of non-JSON body; the first kinds are the simplest to read.
NON_JSON_KINDS: dict[str, Callable[[DrawFn], bytes]] = {
    "empty": lambda draw: b"",
    "plain text": lambda draw: draw(
        st.sampled_from((b"OK", b"operations", b"PRODUCE CARD_SHIPPED"))
    ),
    "truncated JSON": _truncated,
    "almost JSON": _almost_json,
    "XML": _xml,
    "form data": _form,
    "invalid UTF-8": _invalid_utf8,
}


def non_json_bodies() -> SearchStrategy[bytes]:
    """Request bodies that are not JSON: empty, text, truncated, JSON-like, XML, form, bad UTF-8.

    Example::

        @given(non_json_bodies())
        def test_rejects(raw): assert 400 <= receiver.post_bytes(raw).status_code < 500
    """
    return _non_json()


@st.composite
def _non_json(draw: DrawFn) -> bytes:
    build = draw(st.sampled_from(list(NON_JSON_KINDS.values())))
    return build(draw)
