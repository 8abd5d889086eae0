"""One D1 PRODUCE notification: the JSON Schemas, validating a body, and the field vocabulary.

Modules: ``documents`` (the packaged schema documents), ``validation`` (fast path, then the
full list of problems), ``vocabulary`` (carriers, sites and other known values).

>>> from d1sim.contracts.notification import validate_notification
>>> validate_notification({"operations": []})[0].pointer
'/operations'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from d1sim.contracts.notification.validation import notification_validator, validate_notification

__all__ = ["notification_validator", "validate_notification"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: reading a bundled document (``documents``) needs no jsonschema.
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from d1sim.contracts.notification import validation

    return getattr(validation, name)
