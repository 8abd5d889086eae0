"""``d1sim demo``: the whole toolkit on an embedded default, with nothing to configure.

Starts the reference receiver on a free loopback port (with D1's OAuth2 client credentials),
replays every bundled scenario against it with the state probe, checks that every body sent
validates, runs every receiver check, then starts the mock D1 (``d1sim serve``), registers the
receiver as an issuer's webhook and orders one card per outcome hook through D1's API, waiting
for each lifecycle to arrive with ``productionStatus`` agreeing. Prints a summary and writes
reports to ./d1sim-report/.

Exit codes: 0 everything held, 1 an expectation or a check failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from d1sim.contracts.lifecycle import load_lifecycle
from d1sim.contracts.lifecycle.render import render_table
from d1sim.contracts.notification.validation import notification_validator
from d1sim.contracts.scenario.loading import bundled_scenarios
from d1sim.simulator.check.runner import as_cases, http_context, run_checks
from d1sim.simulator.check.transport import HttpProbe
from d1sim.simulator.cli.options import positive
from d1sim.simulator.d1.demo import order_cards
from d1sim.simulator.delivery.auth import OAuth2ClientCredentials
from d1sim.simulator.delivery.engine import SenderConfig
from d1sim.simulator.delivery.outbox import Outbox
from d1sim.simulator.delivery.retry import RetryPolicy
from d1sim.simulator.errors import EXIT_FAILED, EXIT_OK, UsageError
from d1sim.simulator.receiver import ReceiverConfig, running_receiver
from d1sim.simulator.replay.output import make_console, print_results
from d1sim.simulator.replay.run import Replayer, ScenarioRef, ScenarioResult, resolve_scenarios
from d1sim.simulator.reports.results import CaseResult, tally, write_json, write_junit

CLIENT_ID, CLIENT_SECRET = "d1sim-demo", "demo-secret-not-for-production"
TOKEN_PATH = "/authz/d1/v1/oauth2/token"
WEBHOOK = "/notifications/d1/v2/issuers/{issuerId}/cards"
# Quick retries: the demo's outage scenario should recover in well under a second.
DEMO_RETRY = RetryPolicy(max_attempts=8, base=0.02, factor=2.0, cap=0.2)


def add_parser(subparsers: Any) -> None:
    """Register ``d1sim demo``."""
    parser = subparsers.add_parser("demo", help="run the whole toolkit against the reference receiver",
                                   description=__doc__.split("\n\n")[1])
    parser.add_argument("--output", default="d1sim-report", metavar="DIR",
                        help="where reports go (default: %(default)s; emptied first)")
    parser.add_argument("--scenarios", metavar="NAME,NAME", help="only these bundled scenarios")
    parser.add_argument("--max-examples", type=positive(int), default=25, metavar="N",
                        help="examples per receiver check (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="checks' seed (default: 0)")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Run the demo; return 0 when every expectation and check held."""
    console = make_console()
    names = args.scenarios.split(",") if args.scenarios else list(bundled_scenarios())
    refs = resolve_scenarios(names)  # bad names fail before anything is written
    out = _fresh(Path(args.output))
    console.print("[bold]The PRODUCE lifecycle[/bold] (schemas/produce-lifecycle.json)\n")
    console.print(render_table(load_lifecycle()), markup=False)
    started = time.monotonic()
    with ExitStack() as stack:
        url = stack.enter_context(running_receiver(ReceiverConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)))
        auth = OAuth2ClientCredentials(url + TOKEN_PATH, CLIENT_ID, CLIENT_SECRET)
        console.print(f"\nreference receiver on {url} (OAuth2 client credentials)\n")
        results = _replay(stack, refs, url, auth, out)
        valid, invalid = _validate_sent(out / "outbox.db")
        checks = run_checks(http_context(url, state_url=url + "/cards/{cardId}", auth=auth),
                            max_examples=args.max_examples, seed=args.seed)
        console.print("ordering cards through the mock D1 (d1sim serve) ...")
        orders = order_cards(url, {"type": "oauth2", "tokenUrl": url + TOKEN_PATH, "clientId": CLIENT_ID,
                                   "clientSecret": CLIENT_SECRET}, out / "d1.db")
    cases = [c for r in results for c in r.cases]
    check_cases = as_cases(checks)
    print_results(results)
    _verdicts(console, "d1sim check (reference receiver)", check_cases)
    _verdicts(console, "d1sim serve: cards ordered through D1's API", orders)
    _summary(console, results, check_cases + orders, valid, invalid, time.monotonic() - started)
    _write(out, results, check_cases, orders, url)
    failed = tally(cases + check_cases + orders)["failed"] or invalid
    return EXIT_FAILED if failed else EXIT_OK


def _fresh(out: Path) -> Path:
    try:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
    except OSError as exc:
        raise UsageError(f"cannot prepare the report folder {out}: {exc.strerror or exc}") from None
    return out


def _replay(stack: ExitStack, refs: list[ScenarioRef], url: str, auth: Any, out: Path) -> list[ScenarioResult]:
    """Each scenario against the shared receiver, or its own when it asks for receiver knobs."""
    outbox = stack.enter_context(Outbox(out / "outbox.db"))
    results = []
    for ref in refs:
        target, sender_auth = url, auth
        if ref.scenario.receiver:
            knobs = {k: v for k, v in ref.scenario.receiver.items() if k in ReceiverConfig.__dataclass_fields__}
            target, sender_auth = stack.enter_context(running_receiver(ReceiverConfig(**knobs))), None
        config = SenderConfig(target + WEBHOOK, retry=DEMO_RETRY, **({"auth": sender_auth} if sender_auth else {}))
        probe = HttpProbe(target + "/cards/{cardId}")
        stack.callback(probe.close)
        results += Replayer(outbox, config, probe=probe).run_suite([ref])
    return results


def _validate_sent(db: Path) -> tuple[int, int]:
    """Every body the demo sent, validated against the forward-compatible schema."""
    validator, valid, invalid = notification_validator(), 0, 0
    with Outbox(db) as outbox:
        for run in outbox.runs():
            offset = 0
            while page := outbox.deliveries(run.id, limit=1000, offset=offset):
                for item in page:
                    ok = validator.is_valid(orjson.loads(item.delivery.body))
                    valid, invalid = valid + ok, invalid + (not ok)
                offset += len(page)
    return valid, invalid


def _verdicts(console: Console, title: str, cases: list[CaseResult]) -> None:
    table = Table(title="\n" + title, title_justify="left")
    for column in ("case", "outcome", "seconds", "reason"):
        table.add_column(column)
    for case in cases:
        table.add_row(case.name, case.outcome, f"{case.seconds:.1f}", case.reason if case.outcome != "passed"
                      or case.suite != "d1sim check" else "", style="red" if case.outcome == "failed" else None)
    console.print(table)


def _summary(console: Console, results: list[ScenarioResult], checks: list[CaseResult],
             valid: int, invalid: int, seconds: float) -> None:
    expectations = tally(c for r in results for c in r.cases)
    delivered = sum(r.counts["delivered"] for r in results)
    verdict = tally(checks)
    console.print(f"\n[bold]demo[/bold]: {len(results)} scenarios, {delivered} notifications delivered, "
                  f"{expectations['passed']}/{sum(expectations.values())} expectations held; "
                  f"{valid} bodies valid, {invalid} invalid; checks and orders {verdict['passed']} passed, "
                  f"{verdict['failed']} failed, {verdict['skipped']} skipped; {seconds:.0f} s", soft_wrap=True)


def _write(out: Path, results: list[ScenarioResult], checks: list[CaseResult], orders: list[CaseResult],
           url: str) -> None:
    replay_cases = [c for r in results for c in r.cases]
    write_json(out / "replay.json", {"target": url, "scenarios": [
        {"scenario": r.ref.scenario.name, "run_id": r.run_id, "deliveries": r.counts,
         "expectations": [c.as_dict() for c in r.cases]} for r in results]})
    write_junit(out / "replay.xml", replay_cases, name="d1sim replay")
    write_json(out / "checks.json", {"target": url, "checks": [c.as_dict() for c in checks]})
    write_junit(out / "checks.xml", checks, name="d1sim check")
    write_json(out / "serve.json", {"orders": [c.as_dict() for c in orders]})
    write_junit(out / "serve.xml", orders, name="d1sim serve")
    print(f"reports written to {out}/ (replay, checks and serve as .json and .xml; outbox.db, d1.db)")
