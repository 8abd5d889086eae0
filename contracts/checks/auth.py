"""The check that a receiver refuses notifications D1 did not send (docs/d1-produce.md section 3).

Runs only when auth is configured: without it the receiver is meant to accept anyone, and the
check is skipped with that reason rather than passed.
"""

from __future__ import annotations

from typing import Any

from d1sim.contracts.checks.model import CheckFailure
from d1sim.contracts.checks.registry import check
from d1sim.contracts.checks.trial import Trial
from d1sim.contracts.strategies import notifications

REJECTED = (401, 403)
EXPECTED = "401 or 403, and nothing applied"


@check("rejects_missing_auth", strategy=lambda ctx: notifications(1, 1), needs_auth=True)
def rejects_missing_auth(trial: Trial, body: dict[str, Any]) -> CheckFailure | None:
    """With auth configured: no token or a wrong token gets 401 or 403, and nothing is applied."""
    body = trial.fresh(body)
    attempts = (
        ("without an Authorization header", None),
        ("with a token no one issued", f"Bearer {trial.context.ids.token()}"),
    )
    for label, authorization in attempts:
        reply = trial.post(body, label=label, authorization=authorization)
        if reply.status not in REJECTED:
            return trial.fail(reply, EXPECTED)
    applied = trial.applied_any(op["cardId"] for op in body["operations"])
    return trial.fail(applied, EXPECTED) if applied else None
