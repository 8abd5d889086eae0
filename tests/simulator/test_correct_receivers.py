"""No false alarm: correct receivers built in other ways than d1sim's pass every check.

The fast subset (3 seeds, few examples) runs here; ``benchmarks/false_alarms.py`` runs the
full sweep (20 seeds) and also counts how many broken receivers are caught.
"""

from __future__ import annotations

import pytest
from correct_receivers import CLIENT_ID, CLIENT_SECRET, CORRECT, TOKEN, Correct

from d1sim.contracts.checks import check_ids
from d1sim.simulator.check.runner import app_context, run_checks
from d1sim.simulator.check.transport import WSGI_BASE
from d1sim.simulator.delivery.auth import OAuth2ClientCredentials, StaticBearer

SEEDS = (0, 1, 2)
EXAMPLES = 8


def auth_for(row: Correct) -> object:
    if row.oauth:
        return OAuth2ClientCredentials(f"{WSGI_BASE}/authz/d1/v1/oauth2/token", CLIENT_ID,
                                       CLIENT_SECRET)
    return StaticBearer(TOKEN)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in CORRECT])
def test_a_correct_receiver_passes_every_check(row: Correct, seed: int) -> None:
    with app_context(row.build(), auth=auth_for(row)) as context:  # type: ignore[arg-type]
        outcomes = run_checks(context, max_examples=EXAMPLES, seed=seed)
    verdicts = {o.check_id: (o.outcome, o.reason) for o in outcomes}
    assert [o.check_id for o in outcomes] == check_ids()
    assert all(o.outcome == "passed" for o in outcomes), verdicts
