"""The checker catches real bugs: each broken receiver fails the check named for its bug, and
the reference receiver passes them all. In-process (WSGI) for speed, a few over real sockets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from broken_receivers import BROKEN, TOKEN, Broken, broken, reference

from d1sim.contracts.checks import CheckOutcome, check_ids
from d1sim.simulator.check.runner import http_context, run_checks, wsgi_context
from d1sim.simulator.delivery.auth import StaticBearer
from d1sim.simulator.receiver.app import ReceiverConfig, create_app
from d1sim.simulator.web.servers import running_server

EXAMPLES = 15
# These receivers apply before they answer: a short settle keeps each failing example cheap.
SETTLE = 0.2
ROWS = [pytest.param(row, id=row.name.replace(" ", "-")) for row in BROKEN]
# Bugs whose only symptom is their own check: running every check must fail exactly that one.
# Some bugs also show in accepts_batches, whose batches may carry unknown fields, an operation
# again, or an operation of another kind without details: rejecting unknown fields, a 409 to a
# duplicate, reading details of every operation. They are not listed here.
# Bugs only their own check can see. Not here: a bug that batches can also show, since
# accepts_batches draws unknown statuses inside batches (treating one as final may fail it too,
# depending on the draw): each is still failed by its own check in the test above.
PRECISE = [
    "applies only the first operation of a batch",
    "ignores auth",
    "accepts a non-JSON body with 204",
]


def check_in_process(
    row: Broken, checks: list[str] | tuple[str, ...] | None, seed: int = 0
) -> list[CheckOutcome]:
    with wsgi_context(
        row.build(), auth=StaticBearer(TOKEN), timeout=row.timeout, settle=SETTLE
    ) as context:
        return run_checks(context, checks, max_examples=EXAMPLES, seed=seed)


def failed(outcomes: list[CheckOutcome]) -> set[str]:
    return {o.check_id for o in outcomes if o.failed}


@pytest.mark.parametrize("row", ROWS)
def test_each_broken_receiver_fails_the_check_named_for_its_bug(row: Broken) -> None:
    (outcome,) = check_in_process(row, [row.fails])
    assert outcome.outcome == "failed", outcome
    failure = outcome.failure
    assert failure is not None and failure.check_id == row.fails
    assert failure.exchanges and failure.got and failure.expected and failure.replay


@pytest.mark.parametrize("name", PRECISE)
def test_every_other_check_passes_so_the_report_points_at_the_bug(name: str) -> None:
    row = broken(name)
    outcomes = check_in_process(row, None)
    assert failed(outcomes) == {row.fails}
    assert all(o.outcome == "passed" for o in outcomes if o.check_id != row.fails)


def test_the_reference_receiver_passes_every_check_with_auth_and_probe() -> None:
    with wsgi_context(reference(), auth=StaticBearer(TOKEN)) as context:
        outcomes = run_checks(context, max_examples=25)
    assert [(o.check_id, o.outcome) for o in outcomes] == [(i, "passed") for i in check_ids()]


def test_the_reference_receiver_with_oauth_passes_in_process() -> None:
    from d1sim.simulator.check.transport import WSGI_BASE
    from d1sim.simulator.delivery.auth import OAuth2ClientCredentials

    app = create_app(ReceiverConfig(client_id="d1", client_secret="s3cret"))
    auth = OAuth2ClientCredentials(f"{WSGI_BASE}/authz/d1/v1/oauth2/token", "d1", "s3cret")
    with wsgi_context(app, auth=auth) as context:
        outcomes = run_checks(context, ["accepts_batches", "rejects_missing_auth"], max_examples=10)
    assert [o.outcome for o in outcomes] == ["passed", "passed"]
    assert auth.fetches == 1


def _normalized(outcome: CheckOutcome) -> Any:
    # Fresh ids differ on every run by design; everything else must replay byte for byte.
    assert outcome.failure is not None
    hexes = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|[0-9a-f]{4}(-[0-9a-f]{4}){3}")
    bodies = [hexes.sub("ID", e.body.decode()) for e in outcome.failure.exchanges]
    return bodies, hexes.sub("ID", outcome.failure.got), outcome.failure.expected


@pytest.mark.parametrize("name", ["orders shipment updates by arrival", "fails on batches"])
def test_the_same_seed_replays_the_same_minimal_failure(name: str) -> None:
    row = broken(name)
    first, again = (check_in_process(row, [row.fails], seed=3)[0] for _ in range(2))
    assert _normalized(first) == _normalized(again)


def test_the_failing_example_is_shrunk() -> None:
    (outcome,) = check_in_process(broken("fails on batches"), ["accepts_batches"])
    assert outcome.failure is not None
    (exchange,) = outcome.failure.exchanges
    assert exchange.body.count(b'"operationId"') == 2  # the smallest batch that breaks it
    assert outcome.failure.got.startswith("500 ")


def test_a_probe_that_fails_stops_the_check_with_its_reason() -> None:
    app = reference(token=None)
    with wsgi_context(app, probe_path="/_receiver/reset?card={cardId}") as context:  # POST only
        (outcome,) = run_checks(context, ["converges_out_of_order"], max_examples=10)
    assert outcome.outcome == "failed" and outcome.failure is not None
    assert outcome.failure.aborted and outcome.examples == 1
    assert outcome.reason.startswith(
        "the state probe failed: GET http://receiver.d1sim.test/_receiver/reset"
    )
    assert "answered 405" in outcome.reason


# -- over real sockets ------------------------------------------------------------------------


@pytest.fixture
def serve() -> Callable[[Broken], Any]:
    """``serve(row)`` starts a broken receiver on a free port: a context manager -> base URL."""
    return lambda row: running_server(row.build())


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["answers 500 to a non-JSON body", "orders shipment updates by arrival"]
)
def test_broken_receivers_are_caught_over_http(serve: Callable[[Broken], Any], name: str) -> None:
    row = broken(name)
    with serve(row) as url:
        auth = StaticBearer(TOKEN)
        with http_context(url, state_url=url + "/cards/{cardId}", auth=auth) as context:
            (outcome,) = run_checks(context, [row.fails], max_examples=EXAMPLES)
    assert outcome.outcome == "failed"


@pytest.mark.slow
def test_a_slow_receiver_times_out_over_http_and_other_checks_stop_at_once(
    serve: Callable[[Broken], Any],
) -> None:
    row = broken("answers slowly")
    checks = ["accepts_valid_notification", "responds_in_time"]
    with serve(row) as url, http_context(url, auth=StaticBearer(TOKEN), timeout=row.timeout) as ctx:
        outcomes = run_checks(ctx, checks, max_examples=EXAMPLES)
    accepts, in_time = outcomes
    assert in_time.outcome == "failed" and in_time.reason == "no answer: timed out after 0.2 s"
    assert accepts.outcome == "failed" and accepts.failure is not None and accepts.failure.aborted
    assert accepts.examples == 1 and "see responds_in_time" in accepts.failure.expected


def test_a_receiver_failing_at_random_is_reported_as_flaky() -> None:
    from d1sim.simulator.reports.check import format_failure

    app = create_app(ReceiverConfig(fault_rate=0.3, seed=0))
    with wsgi_context(app) as context:
        (outcome,) = run_checks(context, ["accepts_valid_notification"], max_examples=30)
    assert outcome.outcome == "failed" and outcome.failure is not None
    assert outcome.failure.flaky and outcome.reason.startswith("500 ")
    assert "flaky:    the receiver did not fail again" in format_failure(outcome.failure)


def test_shrinking_stops_at_its_budget_with_a_note() -> None:
    row = broken("fails on batches")
    with wsgi_context(row.build(), auth=StaticBearer(TOKEN), timeout=row.timeout, settle=SETTLE) as context:
        (outcome,) = run_checks(context, ["accepts_batches"], max_examples=EXAMPLES, shrink_calls=2)
    assert outcome.outcome == "failed" and outcome.failure is not None
    assert outcome.notes == (
        "shrinking stopped after 2 calls: the example is small, maybe not minimal",
    )


def test_an_error_outside_the_receiver_stops_the_run_instead_of_failing_a_check() -> None:
    from d1sim.simulator.errors import UsageError

    def token() -> str:
        raise UsageError("token endpoint http://issuer/token answered 500")

    with wsgi_context(reference()) as context, pytest.raises(UsageError, match="answered 500"):
        run_checks(replace(context, auth=token), ["accepts_valid_notification"], max_examples=5)


@pytest.mark.parametrize(
    ("name", "feature"),
    [
        ("crashes on other operation kinds", "other operation kinds"),
        ("parses only D1's usual timestamp form", "timestamps in another ISO 8601 form"),
        ("refuses an operation twice in one batch", "the same operation twice in one batch"),
        ("stops a batch at an unknown status", "an unknown details.status inside a batch"),
    ],
)
def test_the_failing_example_names_the_contract_feature_that_broke_the_receiver(
    name: str, feature: str
) -> None:
    row = broken(name)
    (outcome,) = check_in_process(row, [row.fails])
    assert outcome.failure is not None
    assert feature in outcome.failure.exchanges[0].label
