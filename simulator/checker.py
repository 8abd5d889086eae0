"""Run the receiver checks with hypothesis against a transport, and turn verdicts into reports.

Each selected check's property runs as a hypothesis test built on the fly: ``max_examples``
examples from the check's strategy, seeded, no example database, no deadline. Hypothesis
shrinks a failure and replays the minimal example last; that example's failure is the one
reported. A POST that gets no answer, or a probe that fails, stops the check at once (no
shrinking: each step would cost a timeout) and is reported as it was found.

Example::

    from d1sim.simulator.check.runner import run_checks, wsgi_context
    from d1sim.simulator.receiver import create_app

    context = wsgi_context(create_app())
    for outcome in run_checks(context, max_examples=20):
        print(outcome.check_id, outcome.outcome)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky

from d1sim.contracts.checks import (
    DEFAULT_ISSUER_ID,
    DEFAULT_MAX_BATCH,
    DEFAULT_TIMEOUT,
    Check,
    CheckContext,
    CheckFailure,
    CheckOutcome,
    NoReply,
    ProbeError,
    Trial,
    select_checks,
)
from d1sim.simulator.check.transport import HttpProbe, HttpTransport, WsgiTransport, wsgi_probe
from d1sim.simulator.delivery.auth import Auth
from d1sim.simulator.reports.results import CaseResult

DEFAULT_MAX_EXAMPLES = 100
# Calls spent shrinking one failure at most. Each call is a real exchange with the receiver (a
# lifecycle is several POSTs and probes), and hypothesis takes the big steps first, so this
# keeps a failing check to seconds while the reported example is already small.
SHRINK_CALLS = 150
SUITE = "d1sim check"
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

    def __init__(self, check: Check, context: CheckContext) -> None:
        self.check, self.context = check, context
        self.notes: set[str] = set()
        self.examples = self.first_failure = 0
        self.last: CheckFailure | None = None  # hypothesis only tries smaller ones after a failure
        self.stopped: CheckFailure | None = None  # no answer / probe failure: judged as found
        self.crashed: Exception | None = None  # a bug or a setup error: re-raised after the run

    def __call__(self, example: Any) -> None:
        if self.stopped or self.crashed:
            if self.last is not None:
                raise _Enough  # shrinking cannot go on: report the smallest failure so far
            return  # spend nothing more once the run cannot go on
        if self.last is not None and self.examples - self.first_failure >= SHRINK_CALLS:
            self.notes.add(
                f"shrinking stopped after {SHRINK_CALLS} calls: the example is small, "
                "maybe not minimal"
            )
            raise _Enough
        self.examples += 1
        trial = Trial(self.context, self.check.id, self.notes)
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
) -> CheckOutcome:
    """Run one check; skipped when the context lacks what it needs (probe, auth)."""
    reason = check.skip_reason(context)
    if reason:
        return CheckOutcome(check.id, "skipped", reason)
    started = time.perf_counter()
    prop = _Property(check, context)
    failure = _find_failure(prop, check.strategy(context), max_examples, seed)
    seconds, notes = time.perf_counter() - started, tuple(sorted(prop.notes))
    if failure is None:
        return CheckOutcome(
            check.id, "passed", f"{prop.examples} examples", None, prop.examples, seconds, notes
        )
    failure = replace(failure, replay=replay)
    return CheckOutcome(check.id, "failed", failure.got, failure, prop.examples, seconds, notes)


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
) -> list[CheckOutcome]:
    """Run the selected checks (all when None) against ``context``, in the contract's order.

    Args:
        context: transport, probe, auth and limits (see :func:`http_context`, :func:`wsgi_context`).
        check_ids: ids from d1-produce.md section 7; None runs every registered check.
        max_examples: examples per check (shrinking a failure adds more calls).
        seed: hypothesis seed; the same seed replays the same examples.
        replay: gives the replay hint of a failed check from its id (default: a Python call).
        progress: called with each outcome as soon as it is known.
    Returns:
        One :class:`CheckOutcome` per selected check.
    Raises:
        d1sim.contracts.checks.UnknownCheck: an id is not registered (with a did-you-mean).
    """
    hint = replay or (lambda check_id: python_replay(check_id, seed, max_examples))
    outcomes = []
    for check in select_checks(check_ids):
        outcome = run_check(
            check, context, max_examples=max_examples, seed=seed, replay=hint(check.id)
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
        cases.append(
            CaseResult(
                SUITE, outcome.check_id, outcome.outcome, outcome.reason, details, outcome.seconds
            )
        )
    return cases


def header_source(auth: Auth | None, client: httpx.Client) -> Callable[[], str] | None:
    """The ``Authorization`` value D1 would send with ``auth`` (None for no auth)."""
    if auth is None or auth.describe().get("mode") == "none":
        return None
    return lambda: auth.headers(client)["Authorization"]


def http_context(
    target: str,
    *,
    state_url: str | None = None,
    auth: Auth | None = None,
    issuer_id: str = DEFAULT_ISSUER_ID,
    timeout: float = DEFAULT_TIMEOUT,
    max_batch: int = DEFAULT_MAX_BATCH,
    client: httpx.Client | None = None,
) -> CheckContext:
    """A context that reaches the receiver at ``target`` over HTTP (see ``d1sim.simulator.check.transport``)."""
    transport = HttpTransport(target, issuer_id=issuer_id, timeout=timeout, client=client)
    probe = HttpProbe(state_url, client=transport.client, timeout=timeout) if state_url else None
    return CheckContext(
        transport, probe, header_source(auth, transport.client), max_batch, timeout, issuer_id
    )


def wsgi_context(
    app: WSGIApp,
    *,
    probe_path: str | None = "/cards/{cardId}",
    auth: Auth | None = None,
    issuer_id: str = DEFAULT_ISSUER_ID,
    timeout: float = DEFAULT_TIMEOUT,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> CheckContext:
    """A context that calls the WSGI ``app`` in-process, without a socket.

    ``probe_path`` is the app's state-probe path (None: no probe). An OAuth2 ``auth`` may use a
    token URL under ``d1sim.simulator.check.transport.WSGI_BASE`` to reach the app's own token endpoint.
    """
    transport = WsgiTransport(app, issuer_id=issuer_id)
    probe = wsgi_probe(app, probe_path) if probe_path else None
    return CheckContext(
        transport, probe, header_source(auth, transport.client), max_batch, timeout, issuer_id
    )
