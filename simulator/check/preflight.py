"""Before any check: is the target there, do the credentials work, does the probe answer?

A problem found here is one clear usage error (exit code 2), not the same failure repeated in
every check: a wrong token would otherwise fail seven checks with seven 401s.

Example::

    from d1sim.simulator.check.preflight import preflight
    preflight(context)  # raises UsageError("the target answered 401 to the configured ...")
"""

from __future__ import annotations

from d1sim.contracts.checks import CheckContext, NoReply, ProbeError, Trial
from d1sim.contracts.payloads.factory import PayloadFactory
from d1sim.simulator.check.transport import HttpTransport
from d1sim.simulator.errors import UsageError

REFUSED = (401, 403)


def preflight(context: CheckContext) -> None:
    """Raise :class:`UsageError` when the target, the credentials or the probe is unusable."""
    if isinstance(context.transport, HttpTransport):
        context.transport.ensure_reachable()
    if context.auth is not None:
        context.auth()  # fetches the OAuth2 token now: a failing token endpoint is a usage error
    _check_credentials(context)
    _check_probe(context)


def _check_credentials(context: CheckContext) -> None:
    order = PayloadFactory(0).lifecycle(["CARD_PROD_REQUESTED"], card_id=context.ids.card_id())
    trial = Trial(context, "preflight")
    try:
        reply = trial.post({"operations": trial.fresh_operations(order)}, label="preflight")
    except NoReply:
        return  # slowness is responds_in_time's business
    if reply.status not in REFUSED:
        return
    if context.auth is not None:
        said = reply.summary(120).partition(" ")[2]
        raise UsageError(
            f"the target answered {reply.status} to the configured credentials"
            + (f" ({said})" if said else "")
            + "; check the token or the OAuth2 client, no check was run"
        )
    raise UsageError(
        f"the target answered {reply.status} to a notification without credentials; say how "
        "D1 authenticates (--bearer-token, or --oauth-token-url with --client-id and "
        "--client-secret), no check was run"
    )


def _check_probe(context: CheckContext) -> None:
    if context.probe is None:
        return
    card_id = context.ids.card_id()
    try:
        held = context.probe(card_id)
    except ProbeError as exc:
        raise UsageError(f"the state probe does not work: {exc}") from None
    except Exception as exc:  # an integrator's probe callable may raise anything
        raise UsageError(f"the state probe raised {type(exc).__name__}: {exc}") from None
    if held is not None:
        raise UsageError(
            f"the state probe does not work: it holds {str(held)[:100]} for "
            f"card {card_id}, a card never sent (expected a 404)"
        )
