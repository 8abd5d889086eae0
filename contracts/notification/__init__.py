"""One D1 PRODUCE notification: the JSON Schemas, validating a body, and the field vocabulary.

Modules: ``documents`` (the packaged schema documents), ``validation`` (fast path, then the
full list of problems), ``vocabulary`` (carriers, sites and other known values).

>>> from d1sim.contracts.notification import validate_notification
>>> validate_notification({"operations": []})[0].pointer
'/operations'
"""

from d1sim.contracts.notification.validation import notification_validator, validate_notification

__all__ = ["notification_validator", "validate_notification"]
