"""Schema validation of notifications: a fast yes/no, then complete errors only when needed.

The fast path is ``jsonschema_rs`` (compiled); the explanation comes from the reference
``jsonschema`` implementation, whose error tree gives the best human-readable messages.

Example::

    >>> from d1sim.contracts.notification.validation import validate_notification
    >>> validate_notification({"operations": []})[0].pointer
    '/operations'
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from d1sim.contracts.notification.documents import (
    NOTIFICATION_SCHEMA_ID,
    STRICT_NOTIFICATION_SCHEMA_ID,
    schema_documents,
)
from d1sim.contracts.problems import Problem, join_pointer


class NotificationValidator:
    """Validate notification bodies against the default (forward-compatible) or strict schema."""

    def __init__(self, *, strict: bool = False) -> None:
        self.schema_id = STRICT_NOTIFICATION_SCHEMA_ID if strict else NOTIFICATION_SCHEMA_ID
        docs = schema_documents()
        self._fast = jsonschema_rs.validator_for(
            docs[self.schema_id],
            registry=jsonschema_rs.Registry(list(docs.items())),
        )
        registry: Registry[Any] = Registry().with_resources(
            (uri, Resource.from_contents(doc)) for uri, doc in docs.items()
        )
        self._reference = jsonschema.Draft202012Validator(
            docs[self.schema_id], registry=registry
        )
        # Bound directly: one Python call less per document on the hot path.
        self.is_valid = self._fast.is_valid  # type: ignore[method-assign]

    def is_valid(self, instance: Any) -> bool:
        """Fast path: True when ``instance`` is a valid notification."""
        return bool(self._fast.is_valid(instance))

    def iter_problems(self, instance: Any) -> Iterator[Problem]:
        """Every schema problem of ``instance``, one per location, in document order."""
        seen: set[tuple[str, str]] = set()
        for error in sorted(self._reference.iter_errors(instance), key=_error_order):
            for problem in _problems_of(error):
                key = (problem.pointer, problem.message)
                if key not in seen:
                    seen.add(key)
                    yield problem

    def validate(self, instance: Any) -> list[Problem]:
        """Return the problems of ``instance``: empty (cheaply) when it is valid."""
        if self.is_valid(instance):
            return []
        return list(self.iter_problems(instance))


@cache
def notification_validator(strict: bool = False) -> NotificationValidator:
    """The shared validator for the default or strict profile (compiled once)."""
    return NotificationValidator(strict=strict)


def validate_notification(instance: Any, *, strict: bool = False) -> list[Problem]:
    """Validate one notification body; return its problems (empty when valid).

    Args:
        instance: the parsed JSON body, ``{"operations": [...]}``.
        strict: lint against the strict profile (d1sim's own output) instead of the
            forward-compatible default that receivers must apply.
    """
    return notification_validator(strict).validate(instance)


def _error_order(error: ValidationError) -> tuple[str, ...]:
    return tuple(str(part) for part in error.absolute_path)


def _pointer_of(error: ValidationError) -> str:
    return join_pointer("", *error.absolute_path)


def _problems_of(error: ValidationError) -> Iterator[Problem]:
    pointer = _pointer_of(error)
    if error.validator == "required" and isinstance(error.instance, Mapping):
        for name in error.validator_value:
            if name not in error.instance:
                yield Problem(join_pointer(pointer, name), f"required field '{name}' is missing")
        return
    if error.validator == "unevaluatedProperties" and isinstance(error.instance, Mapping):
        for name in _quoted(error.message) & set(error.instance):
            yield Problem(join_pointer(pointer, name), "unknown field (strict profile)")
        return
    if error.validator in ("anyOf", "oneOf") and error.context:
        # An open vocabulary is anyOf [known enum, any string]: the enum branch never explains.
        informative = [e for e in error.context if e.validator != "enum"] or error.context
        error = best_match(informative)
        pointer = _pointer_of(error)
    yield Problem(pointer, _message_of(error))


def _quoted(message: str) -> set[str]:
    return set(re.findall(r"'((?:[^'\\]|\\.)*)'", message))


def _message_of(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "pattern" and "format" in schema:
        return f"{error.instance!r} is not a valid {schema['format']} (ISO 8601 / RFC 3339)"
    return error.message
