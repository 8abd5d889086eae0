"""Run the receiver checks with hypothesis against a transport, and turn verdicts into reports.

Each selected check's property runs as a hypothesis test built on the fly: ``max_examples``
examples from the check's strategy, seeded, no example database, no deadline. Hypothesis
shrinks a failure and replays the minimal example last; that example's failure is the one
reported. A POST that gets no answer, or a probe that fails, stops the check at once (no
shrinking: each step would cost a timeout) and is reported as it was found.

Example::

    from d1sim.simulator.check.runner import run_checks, wsgi_context
    from d1sim.simulator.receiver.app import create_app
    from d1sim.simulator.receiver import create_app

    context = wsgi_context(create_app())
    for outcome in run_checks(context, max_examples=20):
        print(outcome.check_id, outcome.outcome)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from random import SystemRandom
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky

from d1sim.contracts.checks import (
    DEFAULT_CHECKS,
    DEFAULT_ISSUER_ID,
    DEFAULT_MAX_BATCH,
    DEFAULT_TIMEOUT,
    Check,
    CheckContext,
    CheckFailure,
    CheckOutcome,
    IdMint,
    NoReply,
    ProbeError,
    Registry,
    Trial,
)
from d1sim.contracts.checks.trial import Observations
from d1sim.contracts.lifecycle.settling import DEFAULT_SETTLE
from d1sim.simulator.check.apps import app_client
from d1sim.simulator.check.transport import WEBHOOK_PATH, WSGI_BASE, HttpProbe, HttpTransport
from d1sim.simulator.delivery.auth import Auth
from d1sim.simulator.reports.results import CaseResult

DEFAULT_MAX_EXAMPLES = 100
# Calls spent shrinking one failure at most. Each call is a real exchange with the receiver (a
# lifecycle is several POSTs and probes), and hypothesis takes the big steps first, so this
# keeps a failing check to seconds while the reported example is already small.
SHRINK_CALLS = 150
SUITE = "d1sim check"
WAIVED_REASON = "waived on purpose (--skip-checks)"
WSGIApp = Callable[..., Any]


class _Failed(Exception):
    """Raised inside hypothesis to mark an example as failing; carries the failure value."""

    def __init__(self, failure: CheckFailure) -> None:
        super().__init__(failure.got)
        self.failure = failure


class _Enough(BaseException):
    """Stops hypothesis once the shrink budget is spent (a BaseException: not a failure)."""


class _Property:
    """The property hypothesis calls once per example of one check."""

    def __init__(self, check: Check, context: CheckContext, shrink_calls: int = SHRINK_CALLS) -> None:
        self.check, self.context, self.shrink_calls = check, context, shrink_calls
        self.observed = Observations()
        self.notes = self.observed.notes
        self.examples = self.first_failure = 0
        self.last: CheckFailure | None = None  # hypothesis only tries smaller ones after a failure
        self.stopped: CheckFailure | None = None  # no answer / probe failure: judged as found
        self.crashed: Exception | None = None  # a bug or a setup error: re-raised after the run

    def __call__(self, example: Any) -> None:
        if self.stopped or self.crashed:
            if self.last is not None:
                raise _Enough  # shrinking cannot go on: report the smallest failure so far
            return  # spend nothing more once the run cannot go on
        if self.last is not None and self.examples - self.first_failure >= self.shrink_calls:
            self.notes.add(
                f"shrinking stopped after {self.shrink_calls} calls: the example is small, "
                "maybe not minimal"
            )
            raise _Enough
        self.examples += 1
        trial = Trial(self.context, self.check.id, self.observed)
        try:
            failure = self.check.function(trial, example)
        except (NoReply, ProbeError) as exc:
            self.stopped = trial.unanswered(exc)
            return
        except Exception as exc:
            self.crashed = exc
            return
        if failure is not None:
            if self.last is None:
                self.first_failure = self.examples
                self.observed.shrinking = True
            self.last = failure
            raise _Failed(failure)


def _settings(check: Check, max_examples: int) -> settings:
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if check.shrink else [])
    # The default profile as parent: an integrator's own hypothesis profile must not leak in.
    return settings(
        settings.get_profile("default"),
        max_examples=max_examples,
        derandomize=False,
        database=None,
        deadline=None,
        phases=phases,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )


def _find_failure(
    prop: _Property, strategy: Any, max_examples: int, seed: int
) -> CheckFailure | None:
    def property_of_check(example: Any) -> None:
        prop(example)

    test = hypothesis_seed(seed)(
        _settings(prop.check, max_examples)(given(strategy)(property_of_check))
    )
    try:
        test()
    except _Failed as exc:
        return exc.failure
    except _Enough:
        if prop.crashed:
            raise prop.crashed from None
        if prop.stopped:
            prop.notes.add(f"shrinking stopped early: {prop.stopped.got}")
        return prop.last
    except Flaky:
        # The minimal example passed when replayed: report the last failure seen, marked flaky.
        return replace(prop.last, flaky=True) if prop.last else None
    if prop.crashed:
        raise prop.crashed
    return prop.stopped


def run_check(
    check: Check,
    context: CheckContext,
    *,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    seed: int = 0,
    replay: str = "",
    shrink_calls: int = SHRINK_CALLS,
) -> CheckOutcome:
    """Run one check; skipped when the context lacks what it needs (probe, auth)."""
    reason = check.skip_reason(context)
    if reason:
        return CheckOutcome(check.id, "skipped", reason)
    started = time.perf_counter()
    prop = _Property(check, context, shrink_calls)
    failure = _find_failure(prop, check.strategy(context), max_examples, seed)
    seconds, notes = time.perf_counter() - started, tuple(sorted(prop.observed.summary_notes()))
    settled = prop.observed.slowest_settle
    if failure is None:
        return CheckOutcome(check.id, "passed", f"{prop.examples} examples", None, prop.examples,
                            seconds, notes, settled)
    failure = replace(failure, replay=replay)
    return CheckOutcome(check.id, "failed", failure.got, failure, prop.examples, seconds, notes,
                        settled)


def python_replay(check_id: str, seed: int, max_examples: int) -> str:
    """The default replay hint: the Python call that runs exactly this check again."""
    return f"run_checks(context, [{check_id!r}], max_examples={max_examples}, seed={seed})"


def run_checks(
    context: CheckContext,
    check_ids: Iterable[str] | None = None,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    seed: int = 0,
    *,
    replay: Callable[[str], str] | None = None,
    progress: Callable[[CheckOutcome], None] | None = None,
    shrink_calls: int = SHRINK_CALLS,
    registry: Registry = DEFAULT_CHECKS,
    waived: Iterable[str] = (),
) -> list[CheckOutcome]:
    """Run the selected checks (all when None) against ``context``, in the contract's order.

    Args:
        context: transport, probe, auth and limits (see :func:`http_context`, :func:`wsgi_context`).
        check_ids: ids from docs/d1-produce.md section 7; None runs every registered check.
        max_examples: examples per check (shrinking a failure adds more calls).
        seed: hypothesis seed; the same seed replays the same examples.
        replay: gives the replay hint of a failed check from its id (default: a Python call).
        progress: called with each outcome as soon as it is known.
        shrink_calls: calls spent shrinking one failure at most, then its smallest example so far.
        registry: the checks to choose from (``DEFAULT_CHECKS.with_checks(...)`` adds your own).
        waived: ids of checks not run on purpose; each gets a *waived* outcome.
    Returns:
        One :class:`CheckOutcome` per selected check.
    Raises:
        d1sim.contracts.checks.UnknownCheck: an id is not registered (with a did-you-mean).
    """
    hint = replay or (lambda check_id: python_replay(check_id, seed, max_examples))
    outcomes = []
    waived = {c.id for c in registry.select(list(waived))}  # raises UnknownCheck for a typo
    for check in registry.select(check_ids):
        if check.id in waived:
            outcome = CheckOutcome(check.id, "waived", WAIVED_REASON)
        else:
            outcome = run_check(
                check,
                context,
                max_examples=max_examples,
                seed=seed,
                replay=hint(check.id),
                shrink_calls=shrink_calls,
            )
        outcomes.append(outcome)
        if progress:
            progress(outcome)
    return outcomes


def as_cases(outcomes: Iterable[CheckOutcome]) -> list[CaseResult]:
    """The outcomes as report cases (one per check) for ``d1sim.simulator.reports.results``."""
    cases = []
    for outcome in outcomes:
        details: dict[str, Any] = outcome.failure.as_dict() if outcome.failure else {}
        if outcome.notes:
            details["notes"] = list(outcome.notes)
        verdict = outcome.outcome
        if verdict == "waived":  # JUnit knows no waiver: a skip whose message says so
            verdict, details["waived"] = "skipped", True
        cases.append(
            CaseResult(SUITE, outcome.check_id, verdict, outcome.reason, details, outcome.seconds)
        )
    return cases


def header_source(auth: Auth | None, client: httpx.Client) -> Callable[[], str] | None:
    """The ``Authorization`` value D1 would send with ``auth`` (None for no auth)."""
    if auth is None or auth.describe().get("mode") == "none":
        return None
    return lambda: auth.headers(client)["Authorization"]


def _auth_settings(auth: Auth | None, client: httpx.Client) -> dict[str, Any]:
    source = header_source(auth, client)
    if source is None or auth is None:
        return {"auth": None}
    return {"auth": source, "reauthorize": auth.on_unauthorized}


def http_context(
    target: str,
    *,
    state_url: str | None = None,
    auth: Auth | None = None,
    issuer_id: str = DEFAULT_ISSUER_ID,
    timeout: float = DEFAULT_TIMEOUT,
    max_batch: int = DEFAULT_MAX_BATCH,
    settle: float = DEFAULT_SETTLE,
    client: httpx.Client | None = None,
) -> CheckContext:
    """A context that reaches the receiver at ``target`` over HTTP (see ``d1sim.simulator.check.transport``)."""
    transport = HttpTransport(target, issuer_id=issuer_id, timeout=timeout, client=client)
    probe = HttpProbe(state_url, client=transport.client, timeout=timeout) if state_url else None
    return CheckContext(transport, probe, max_batch=max_batch, timeout=timeout,
                        issuer_id=issuer_id, settle=settle,
                        ids=IdMint(rng=SystemRandom()),  # unique across runs against one receiver
                        **_auth_settings(auth, transport.client))


def app_context(
    app: Any,
    *,
    probe_path: str | None = "/cards/{cardId}",
    auth: Auth | None = None,
    issuer_id: str = DEFAULT_ISSUER_ID,
    timeout: float = DEFAULT_TIMEOUT,
    max_batch: int = DEFAULT_MAX_BATCH,
    settle: float = DEFAULT_SETTLE,
) -> CheckContext:
    """A context that calls ``app`` in-process, without a socket: a WSGI app (Flask, Django) or
    an ASGI app (FastAPI, Starlette), through httpx's transports.

    ``probe_path`` is the app's state-probe path (None: no probe). An OAuth2 ``auth`` may use a
    token URL under ``d1sim.simulator.check.transport.WSGI_BASE`` to reach the app's own token endpoint.
    There is no socket, so ``timeout`` cannot cut a slow app short: ``responds_in_time`` judges
    the measured time.

    Raises:
        d1sim.simulator.check.apps.NotAnApp: ``app`` is neither WSGI nor ASGI (names what it is).
    """
    client = app_client(app)
    transport = HttpTransport(WSGI_BASE + WEBHOOK_PATH, issuer_id=issuer_id, timeout=timeout,
                              client=client)
    probe = HttpProbe(WSGI_BASE + probe_path, client=client, timeout=timeout) if probe_path else None
    return CheckContext(transport, probe, max_batch=max_batch, timeout=timeout,
                        issuer_id=issuer_id, settle=settle, ids=IdMint(rng=SystemRandom()),
                        **_auth_settings(auth, client))


wsgi_context = app_context  # the name from before ASGI apps were accepted
