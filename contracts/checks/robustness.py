"""Checks that a receiver fails safe: refuses garbage with a 4xx, never answers 5xx to bad input
(D1 retries a 5xx for ever), and answers within D1's timeout (docs/d1-produce.md sections 2, 7).
"""

from __future__ import annotations

from typing import Any

from d1sim.contracts.checks.model import CheckFailure, NoReply
from d1sim.contracts.checks.registry import check
from d1sim.contracts.checks.trial import Trial
from d1sim.contracts.strategies import invalid_notifications, non_json_bodies, notifications
from d1sim.contracts.strategies.malformed import InvalidNotification


@check("rejects_malformed_json", strategy=lambda ctx: non_json_bodies())
def rejects_malformed_json(trial: Trial, raw: bytes) -> CheckFailure | None:
    """A body that is not JSON gets 4xx (not 2xx, not 5xx)."""
    reply = trial.post(raw, label="a body that is not JSON (Content-Type: application/json)")
    if 400 <= reply.status < 500:
        return None
    expected = "4xx: the body cannot be a notification (a 5xx makes D1 retry it for ever)"
    return trial.fail(reply, expected)


@check("no_server_error_on_invalid", strategy=lambda ctx: invalid_notifications())
def no_server_error_on_invalid(trial: Trial, case: InvalidNotification) -> CheckFailure | None:
    """Schema-invalid JSON gets 2xx or 4xx, never 5xx (a 5xx makes D1 retry for ever)."""
    where = f"at {case.pointer}" if case.pointer else "the whole body"
    reply = trial.post(trial.fresh(case.body), label=f"schema-invalid JSON (wrong: {where})")
    if 200 <= reply.status < 300 or 400 <= reply.status < 500:
        return None
    return trial.fail(reply, "2xx or 4xx, never 5xx: D1 retries a 5xx for ever")


@check("responds_in_time", strategy=lambda ctx: notifications(1, ctx.max_batch), shrink=False)
def responds_in_time(trial: Trial, body: dict[str, Any]) -> CheckFailure | None:
    """Every answer comes within the configured timeout (default 10 s)."""
    limit = trial.context.timeout
    expected = f"an answer within {limit:g} s (D1 gives up then and delivers again)"
    try:
        reply = trial.post(trial.fresh(body), label=f"{len(body['operations'])} operation(s)")
    except NoReply as exc:
        return trial.fail(f"no answer: {exc.reason}", expected)
    if reply.elapsed > limit:
        return trial.fail(f"{reply.summary()} after {reply.elapsed:.3f} s", expected)
    return None
