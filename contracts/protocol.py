"""D1's protocol facts and d1sim's own fixed names, each defined once: import them, never retype.

Pure values (no I/O): the webhook path D1 POSTs PRODUCE notifications to, the issuer id d1sim
uses when none is given, and the mock D1's path prefixes and test-hook header.

Example::

    >>> webhook_path("ISSUER0001")
    '/notifications/d1/v2/issuers/ISSUER0001/cards'
    >>> webhook_path("<issuer_id>") == WEBHOOK_PATH.replace("{issuerId}", "<issuer_id>")
    True
"""

from __future__ import annotations

# The issuer id used when a scenario, a command or a test does not name one (10 characters).
DEFAULT_ISSUER_ID = "ISSUER0001"

# Where D1 POSTs an issuer's card notifications (appended to a receiver's base URL).
WEBHOOK_PATH = "/notifications/d1/v2/issuers/{issuerId}/cards"

# The mock D1 (``d1sim serve``): D1's inbound banking API, and d1sim's own admin API.
BANKING_PREFIX = "/banking/v1"
ADMIN_PREFIX = "/_sim"

# Test hook on a production order: which bundled scenario the mock D1 plays for that card.
SCENARIO_HEADER = "X-D1Sim-Scenario"


def webhook_path(issuer_id: str) -> str:
    """The webhook path of one issuer (or of a route placeholder such as ``<issuer_id>``)."""
    return WEBHOOK_PATH.replace("{issuerId}", issuer_id)
