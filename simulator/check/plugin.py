"""pytest plugin: run d1sim's receiver checks from an integrator's own test suite.

Installed with d1sim (entry point ``pytest11``: ``d1sim``); disable with ``-p no:d1sim``.

Fixtures:

- ``d1sim_receiver``: the reference receiver served on a free loopback port; yields its base
  URL (probe at ``URL + "/cards/{cardId}"``). Override ``d1sim_receiver_config`` to change it.
- ``d1sim_check``: a function that runs the checks against a URL, or a WSGI or ASGI app
  in-process (no socket), returns the outcomes, and fails the test with the full report when
  one fails. A check that cannot run for lack of a state probe makes the test *skip* with the
  reason (never a green pass); waive a check on purpose with ``skip_checks=[...]``.
- ``d1sim_serve_app``: a function that serves your own app (WSGI under waitress, ASGI under
  uvicorn) on 127.0.0.1, a free port, for the test, and returns its base URL.

Example::

    def test_my_receiver_conforms(d1sim_check):
        from myapp import create_app
        d1sim_check(create_app(testing=True), state_url="/cards/{cardId}", bearer_token="t0ken")

Nothing heavy is imported until a fixture is used, so the plugin costs nothing elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from d1sim.contracts.protocol import DEFAULT_ISSUER_ID

if TYPE_CHECKING:
    from d1sim.contracts.checks import CheckContext, CheckOutcome, Probe
    from d1sim.simulator.delivery.auth import Auth
    from d1sim.simulator.receiver import ReceiverConfig

MAX_EXAMPLES_INI = "d1sim_max_examples"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        MAX_EXAMPLES_INI,
        "examples per check for the d1sim_check fixture (default 25)",
        default="25",
    )


@pytest.fixture
def d1sim_receiver_config() -> ReceiverConfig:
    """The configuration of ``d1sim_receiver``: override this fixture to add auth or knobs."""
    from d1sim.simulator.receiver.app import ReceiverConfig

    return ReceiverConfig()


@pytest.fixture
def d1sim_receiver(d1sim_receiver_config: ReceiverConfig) -> Iterator[str]:
    """The reference receiver on 127.0.0.1 (a free port) for the test; yields its base URL."""
    from d1sim.simulator.receiver.app import running_receiver

    with running_receiver(d1sim_receiver_config) as url:
        yield url


class D1simCheck:
    """The ``d1sim_check`` fixture's value: call it to check one receiver."""

    def __init__(self, max_examples: int) -> None:
        self.max_examples = max_examples

    def __call__(
        self,
        target: str | Callable[..., Any],
        *,
        checks: Iterable[str] | None = None,
        state_url: str | None = None,
        probe: Probe | None = None,
        bearer_token: str | None = None,
        auth: Auth | None = None,
        max_examples: int | None = None,
        seed: int = 0,
        timeout: float = 10.0,
        max_batch: int = 10,
        issuer_id: str = DEFAULT_ISSUER_ID,
        settle: float | None = None,
        skip_checks: Iterable[str] = (),
        fail: bool = True,
    ) -> list[CheckOutcome]:
        """Run the checks (all by default) against ``target``; fail the test when one fails.

        Args:
            target: the receiver's URL, or its WSGI or ASGI app (called in-process, no socket).
            state_url: the probe: a URL template with ``{cardId}`` (for a WSGI app, a path
                such as ``"/cards/{cardId}"``); or give ``probe``, a callable
                ``card_id -> dict | None``. Without either, state checks are skipped.
            bearer_token, auth: how D1 authenticates (a static token, or any
                ``d1sim.simulator.delivery.auth`` mode such as ``OAuth2ClientCredentials``).
            settle: seconds a state comparison polls the probe (asynchronous receivers);
                None: d1sim's default (``d1sim.contracts.lifecycle.settling.DEFAULT_SETTLE``, 5 s).
            skip_checks: check ids waived on purpose (reported as waived).
            fail: call ``pytest.fail`` with the report when a check fails, and ``pytest.skip``
                when a check could not run for lack of a probe (else just return).
        Returns:
            One ``CheckOutcome`` per check run.
        """
        from d1sim.contracts.lifecycle.settling import DEFAULT_SETTLE
        from d1sim.simulator.check.preflight import preflight
        from d1sim.simulator.check.runner import run_checks
        from d1sim.simulator.errors import UsageError

        examples = max_examples or self.max_examples
        started = time.perf_counter()
        with self.context(
            target,
            state_url,
            probe,
            auth or _bearer(bearer_token),
            timeout=timeout,
            max_batch=max_batch,
            issuer_id=issuer_id,
            settle=DEFAULT_SETTLE if settle is None else settle,
        ) as context:
            try:
                preflight(context)
            except UsageError as exc:
                pytest.fail(f"d1sim receiver checks could not start: {exc}", pytrace=False)
            outcomes = run_checks(
                context,
                checks,
                examples,
                seed,
                replay=lambda check_id: (
                    f"d1sim_check(..., checks=[{check_id!r}], max_examples={examples}, seed={seed})"
                ),
                waived=skip_checks,
            )
        if fail:
            _judge(outcomes, time.perf_counter() - started)
        return outcomes

    @staticmethod
    def context(
        target: str | Callable[..., Any],
        state_url: str | None,
        probe: Probe | None,
        auth: Auth | None,
        **settings: Any,
    ) -> CheckContext:
        """The check context for a URL or a WSGI/ASGI app, with the probe asked for."""
        from d1sim.simulator.check.runner import app_context, http_context
        from d1sim.simulator.errors import UsageError

        if isinstance(target, str):
            context = http_context(
                target, state_url=None if probe else state_url, auth=auth, **settings
            )
        else:
            try:
                context = app_context(
                    target, probe_path=None if probe else state_url, auth=auth, **settings
                )
            except UsageError as exc:  # neither WSGI nor ASGI: one clear message
                pytest.fail(f"d1sim_check: {exc}", pytrace=False)
        return replace(context, probe=probe) if probe else context


def _judge(outcomes: list[CheckOutcome], seconds: float) -> None:
    """Fail the test with the report on a failure; skip it when a check needed a probe."""
    from d1sim.simulator.reports.check import format_report

    if any(o.failed for o in outcomes):
        report = format_report(outcomes, seconds)
        pytest.fail(f"d1sim receiver checks failed\n\n{report}", pytrace=False)
    unrun = [o for o in outcomes if o.outcome == "skipped" and "probe" in o.reason]
    if unrun:
        listed = ", ".join(f"{o.check_id} ({o.reason})" for o in unrun)
        pytest.skip(f"d1sim: {len(unrun)} check(s) could not run: {listed}; give state_url= or "
                    "probe=, or waive them with skip_checks=[...]")


def _bearer(token: str | None) -> Auth | None:
    if token is None:
        return None
    from d1sim.simulator.delivery.auth import StaticBearer

    return StaticBearer(token)


@pytest.fixture
def d1sim_serve_app() -> Iterator[Callable[[Any], str]]:
    """Serve the integrator's own app for the test: ``url = d1sim_serve_app(app)``.

    WSGI apps run under waitress, ASGI apps under uvicorn (``pip install 'd1sim[asgi]'``), on
    127.0.0.1 with a free port; every server started stops when the test ends.
    """
    from contextlib import ExitStack

    from d1sim.simulator.check.serving import serving

    with ExitStack() as servers:
        yield lambda app: servers.enter_context(serving(app))


@pytest.fixture
def d1sim_check(request: pytest.FixtureRequest) -> D1simCheck:
    """Run d1sim's receiver checks: ``d1sim_check(url_or_wsgi_app, state_url=..., ...)``."""
    return D1simCheck(int(request.config.getini(MAX_EXAMPLES_INI)))
