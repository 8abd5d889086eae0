"""The inbound API's rules (issuer -> D1): order bodies, path ids, and the scenario test hook.

Errors follow D1's shape, ``{"errorCode", "error"}`` with ``error`` naming the field
(d1-produce.md section 8): FIELD_INVALID_FORMAT for a missing field or a value of the wrong
type or pattern, FIELD_INVALID_VALUE for a well-formed value that is not allowed. The schemas
are ``schemas/inbound-production-order.schema.json`` and ``inbound-production-batch``; checking
is the fast compiled validator first, the reference one only to explain a rejection.

Example::

    >>> check_order({"distributionChannel": "POST"}).as_body()["errorCode"]
    'FIELD_INVALID_VALUE'
    >>> check_order({"shipment": {"type": "BULK"}, "distributionChannel": "THALES"}).field
    'shipment.deliveryAddress'
    >>> scenario_from_request_id("SCN-data-exception-42", ["data-exception", "happy-path"])
    'data-exception'
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from d1sim.contracts.notification.documents import load_document, schema_documents

ORDER_SCHEMA_ID = "https://d1sim.dev/schemas/inbound-production-order.schema.json"
BATCH_SCHEMA_ID = "https://d1sim.dev/schemas/inbound-production-batch.schema.json"
CARD_ID = re.compile(r"^[A-Za-z0-9_-]{1,48}$")
ISSUER_ID_LENGTH = 10
SCENARIO_PREFIX = "SCN-"
FORMAT, VALUE, PARSING = "FIELD_INVALID_FORMAT", "FIELD_INVALID_VALUE", "PARSING_ERROR"
# A value that is well formed but not allowed; every other keyword is a format problem.
VALUE_KEYWORDS = frozenset({"enum", "const"})


@dataclass(frozen=True, slots=True)
class InboundError:
    """One rejection in D1's terms: the error code, the field it names, and a human message."""

    code: str
    field: str
    message: str

    def as_body(self) -> dict[str, str]:
        """D1's error body; ``message`` is d1sim's extra for humans (unknown fields are legal)."""
        return {"errorCode": self.code, "error": self.field, "message": self.message}


class _Checker:
    """A compiled validator for one inbound schema, with the reference one for explanations."""

    def __init__(self, schema_id: str) -> None:
        docs = schema_documents()
        self._fast = jsonschema_rs.validator_for(docs[schema_id], registry=jsonschema_rs.Registry(list(docs.items())))
        registry: Registry[Any] = Registry().with_resources(
            (uri, Resource.from_contents(doc)) for uri, doc in docs.items()
        )
        self._reference = jsonschema.Draft202012Validator(docs[schema_id], registry=registry)

    def first_error(self, body: Any) -> InboundError | None:
        if self._fast.is_valid(body):
            return None
        errors = sorted(_leaves(self._reference.iter_errors(body)), key=_error_rank)
        return _explain(errors[0]) if errors else InboundError(FORMAT, "body", "invalid body")


def _leaves(errors: Iterable[ValidationError]) -> Iterable[ValidationError]:
    # allOf/$ref wrappers carry their real causes in ``context``.
    for error in errors:
        if error.context:
            yield from _leaves(error.context)
        else:
            yield error


def _error_rank(error: ValidationError) -> tuple[tuple[str, ...], int]:
    # Document order names "the first bad field"; at one place a format beats a value problem.
    where = tuple(f"{part:>08}" if isinstance(part, int) else str(part) for part in error.absolute_path)
    return where, error.validator in VALUE_KEYWORDS


def _explain(error: ValidationError) -> InboundError:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = [n for n in error.validator_value if n not in (error.instance or {})]
        name = missing[0] if missing else "?"
        return InboundError(FORMAT, field_name([*path, name]), f"required field '{name}' is missing")
    code = VALUE if error.validator in VALUE_KEYWORDS else FORMAT
    message = error.message if len(error.message) < 200 else error.message[:197] + "..."
    return InboundError(code, field_name(path) or "body", message)


def field_name(path: Iterable[str | int]) -> str:
    """``['cards', 2, 'shipment', 'type']`` -> ``cards[2].shipment.type``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@cache
def _checker(schema_id: str) -> _Checker:
    return _Checker(schema_id)


def check_order(body: Any) -> InboundError | None:
    """The first problem of a single production order body, or None when it is acceptable."""
    return _checker(ORDER_SCHEMA_ID).first_error(body)


def check_batch(body: Any) -> InboundError | None:
    """The first problem of a batch body ``{"cards": [...]}`` (1-1000 orders with cardId)."""
    error = _checker(BATCH_SCHEMA_ID).first_error(body)
    if error is not None:
        return error
    cards, requests = set(), set()
    for i, card in enumerate(body["cards"]):
        if card["cardId"] in cards:
            return InboundError(VALUE, f"cards[{i}].cardId", "the card is ordered twice")
        if card.get("issuerRequestId") in requests:
            return InboundError(VALUE, f"cards[{i}].issuerRequestId", "used twice in this batch")
        cards.add(card["cardId"])
        if card.get("issuerRequestId") is not None:
            requests.add(card["issuerRequestId"])
    return None


def check_card_id(card_id: str) -> InboundError | None:
    """A path's cardId: 1-48 letters, digits, ``_`` or ``-``."""
    if CARD_ID.match(card_id):
        return None
    return InboundError(FORMAT, "cardId", "cardId must match ^[A-Za-z0-9_-]{1,48}$")


def check_issuer_id(issuer_id: str) -> InboundError | None:
    """A path's issuerId: exactly 10 characters."""
    if len(issuer_id) == ISSUER_ID_LENGTH:
        return None
    return InboundError(FORMAT, "issuerId", f"issuerId must be exactly {ISSUER_ID_LENGTH} characters")


def scenario_from_request_id(request_id: str | None, known: Iterable[str]) -> str | None:
    """The scenario an ``SCN-<name>-...`` issuerRequestId asks for; None without the prefix.

    Names contain dashes, so the longest known name followed by ``-`` wins.

    Raises:
        ValueError: the prefix is there but no known scenario name follows it.
    """
    if not request_id or not request_id.startswith(SCENARIO_PREFIX):
        return None
    rest = request_id[len(SCENARIO_PREFIX) :]
    matches = [name for name in known if rest.startswith(f"{name}-") or rest == name]
    if not matches:
        raise ValueError(f"issuerRequestId {request_id!r} names no known scenario after {SCENARIO_PREFIX}")
    return max(matches, key=len)


def sample_order() -> dict[str, Any]:
    """A valid single-card order body: the schema's own example (a fresh copy each call)."""
    return copy.deepcopy(load_document("inbound-production-order.schema.json")["examples"][0])
