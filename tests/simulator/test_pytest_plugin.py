"""The pytest plugin, as an integrator's test suite uses it (pytester runs those suites)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

# Once d1sim is installed with its pytest11 entry point the plugin loads by itself; before
# that (a checkout without reinstall) the suites under test ask for it explicitly.
INSTALLED = any(ep.value == "d1sim.simulator.check.plugin" for ep in entry_points(group="pytest11"))
PLUGIN = [] if INSTALLED else ["-p", "d1sim.simulator.check.plugin"]
BROKEN_APP = '''
from flask import Flask, request

def create_app():
    """Answers 500 when the body is not JSON (the parser's exception escapes)."""
    app = Flask("integrator")

    @app.post("/notifications/d1/v2/issuers/<issuer>/cards")
    def notify(issuer):
        request.get_json(force=True, silent=False)
        return "", 204

    @app.errorhandler(400)
    def crash(error):
        return "boom", 500

    return app
'''


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider", *args)


@pytest.mark.slow
def test_the_reference_receiver_fixture_passes_every_check_over_http(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("""
        def test_reference_conforms(d1sim_receiver, d1sim_check):
            assert d1sim_receiver.startswith("http://127.0.0.1:")
            outcomes = d1sim_check(d1sim_receiver, state_url=d1sim_receiver + "/cards/{cardId}",
                                   max_examples=10)
            assert {o.outcome for o in outcomes} == {"passed", "skipped"}
            skipped = [o.check_id for o in outcomes if o.outcome == "skipped"]
            assert skipped == ["rejects_missing_auth"]
    """)
    run(pytester).assert_outcomes(passed=1)


@pytest.mark.slow
def test_overriding_the_config_fixture_turns_auth_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        from d1sim.simulator.receiver.app import ReceiverConfig

        @pytest.fixture
        def d1sim_receiver_config():
            return ReceiverConfig(bearer_token="t0ken")

        def test_auth(d1sim_receiver, d1sim_check):
            (outcome,) = d1sim_check(d1sim_receiver, checks=["rejects_missing_auth"],
                                     bearer_token="t0ken", max_examples=5)
            assert outcome.outcome == "passed"
    """)
    run(pytester).assert_outcomes(passed=1)


def test_a_broken_wsgi_app_fails_the_test_with_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(integrator_app=BROKEN_APP)
    pytester.makepyfile("""
        from integrator_app import create_app

        def test_conforms(d1sim_check):
            d1sim_check(create_app(), checks=["rejects_malformed_json", "accepts_batches"])
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*d1sim receiver checks failed*",
            "passed   accepts_batches *",
            "failed   rejects_malformed_json *500 boom*",
            "FAILED rejects_malformed_json: A body that is not JSON gets 4xx (not 2xx, not 5xx).",
            "*minimal example, 1 request(s) in the order sent:*",
            "*-> 500 boom",
            "*expected: 4xx*",
            "*replay:   d1sim_check(..., checks=?'rejects_malformed_json'?, max_examples=25, seed=0)",  # noqa: E501
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_outcomes_are_returned_without_failing_when_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(integrator_app=BROKEN_APP)
    pytester.makepyfile("""
        from integrator_app import create_app

        def test_collect(d1sim_check):
            (outcome,) = d1sim_check(create_app(), checks=["rejects_malformed_json"], fail=False)
            assert outcome.outcome == "failed" and outcome.failure.got.startswith("500")
    """)
    run(pytester).assert_outcomes(passed=1)


def test_a_probe_callable_and_the_ini_default_are_used(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nd1sim_max_examples = 7\n")
    pytester.makepyfile("""
        from d1sim.simulator.receiver.app import create_app

        def test_probe(d1sim_check):
            app = create_app()
            store = app.extensions["d1sim.receiver"].store
            (outcome,) = d1sim_check(app, checks=["converges_out_of_order"], probe=store.probe)
            assert outcome.outcome == "passed" and outcome.examples == 7
    """)
    run(pytester).assert_outcomes(passed=1)


def test_integrators_can_use_the_strategies_in_their_own_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        from hypothesis import given, settings
        from d1sim.contracts.strategies import notifications
        from d1sim.simulator.receiver.app import create_app

        client = create_app().test_client()

        @settings(max_examples=20)
        @given(notifications())
        def test_receiver_accepts(body):
            url = "/notifications/d1/v2/issuers/ISSUER0001/cards"
            assert client.post(url, json=body).status_code == 204
    """)
    run(pytester).assert_outcomes(passed=1)


ASGI_APP = '''
import asyncio, json
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

app = FastAPI()
held = {}
RANKS = {"CARD_PROD_REQUESTED": 0, "DATA_PREPARED": 1, "CARD_PROD_READY": 2,
         "CARD_PROD_ONGOING": 3, "CARD_PROD_DONE": 4, "CARD_SHIPPED": 5,
         "DATA_EXCEPTION": 6, "CARD_PROD_CANCELED": 6}

@app.post("/notifications/d1/v2/issuers/{issuer}/cards")
async def notify(issuer: str, request: Request):
    try:
        body = json.loads(await request.body())
        ops = body["operations"]
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": "bad"}, 400)
    return Response(status_code=204)

@app.get("/cards/{card_id}")
async def card(card_id: str):
    return JSONResponse({"error": "unknown"}, 404)
'''


@pytest.mark.slow
def test_an_asgi_app_is_checked_in_process(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(asgi_app=ASGI_APP)
    pytester.makepyfile("""
        from asgi_app import app

        def test_conforms(d1sim_check):
            outcomes = d1sim_check(app, checks=["accepts_valid_notification",
                                                "rejects_malformed_json"], max_examples=5)
            assert [o.outcome for o in outcomes] == ["passed", "passed"]
    """)
    run(pytester).assert_outcomes(passed=1)


@pytest.mark.slow
def test_a_check_that_needs_a_probe_skips_the_test_unless_waived(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(asgi_app=ASGI_APP)
    pytester.makepyfile("""
        from asgi_app import app

        def test_without_probe(d1sim_check):
            d1sim_check(app, checks=["converges_out_of_order"], max_examples=3)

        def test_waived(d1sim_check):
            outcomes = d1sim_check(app, checks=["converges_out_of_order", "responds_in_time"],
                                   skip_checks=["converges_out_of_order"], max_examples=3)
            assert [o.outcome for o in outcomes] == ["waived", "passed"]
    """)
    result = run(pytester, "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*converges_out_of_order (needs a state probe*"])


@pytest.mark.slow
def test_the_serving_fixture_serves_wsgi_and_asgi_apps_on_loopback(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(asgi_app=ASGI_APP)
    pytester.makepyfile("""
        import httpx
        from asgi_app import app as asgi_app
        from d1sim.simulator.receiver import ReceiverConfig, create_app

        def test_served(d1sim_serve_app, d1sim_check):
            wsgi_url = d1sim_serve_app(create_app(ReceiverConfig()))
            asgi_url = d1sim_serve_app(asgi_app)
            for url in (wsgi_url, asgi_url):
                assert url.startswith("http://127.0.0.1:")
                assert httpx.get(url + "/cards/nope").status_code == 404
            outcomes = d1sim_check(wsgi_url, state_url=wsgi_url + "/cards/{cardId}",
                                   checks=["converges_out_of_order"], max_examples=5)
            assert outcomes[0].outcome == "passed"
    """)
    run(pytester).assert_outcomes(passed=1)


def test_something_that_is_no_app_is_one_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_wrong(d1sim_check):
            d1sim_check(42)
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected a WSGI app*or an ASGI app*got int 42*"])
