"""``d1sim replay SCENARIO... --target URL``: push scenario-driven notifications to a receiver.

Every planned delivery is stored in the outbox before the first POST; a replay that was killed
resumes when the same command runs again (or with ``--resume RUN_ID``).

Exit codes: 0 every expectation held, 1 at least one did not, 2 usage error, bad scenario, a
target that refuses connections from the start (unless --keep-retrying-unreachable), or a run
that another live ``replay`` is sending (one run, one sender).
"""

from __future__ import annotations

import argparse
import gc
import os
from typing import Any

from d1sim.contracts.lifecycle.settling import DEFAULT_SETTLE
from d1sim.contracts.protocol import DEFAULT_ISSUER_ID, WEBHOOK_PATH
from d1sim.contracts.scenario.loading import bundled_scenarios
from d1sim.simulator.cli.options import (
    MAX_INT,
    MAX_SECONDS,
    SIGN_ENV,
    add_auth_options,
    add_tls_options,
    build_auth,
    check_files,
    integer,
    number,
    url,
)
from d1sim.simulator.delivery.engine import SenderConfig
from d1sim.simulator.delivery.outbox import DEFAULT_PATH, Outbox
from d1sim.simulator.delivery.retry import RetryPolicy
from d1sim.simulator.errors import EXIT_FAILED, EXIT_OK, UsageError
from d1sim.simulator.replay.output import ProgressBars, print_results, write_reports
from d1sim.simulator.replay.run import Replayer, ScenarioResult, resolve_scenarios
from d1sim.simulator.replay.writer import started_ahead

EPILOG = f"""\
SCENARIO is a bundled name (see --list), a .yaml file, or a folder of them.
The target URL may contain {{issuerId}}; it is the scenario's issuerId unless --issuer-id is given.

examples:
  d1sim replay happy-path --target 'http://127.0.0.1:8090{WEBHOOK_PATH}'
  d1sim replay scenarios/ qa/my-suite/ --target "$HOOK" --state-url 'http://127.0.0.1:8090/cards/{{cardId}}' \\
      --time-scale 3600 --report-junit replay.xml
"""


def add_parser(subparsers: Any) -> None:
    """Register ``d1sim replay``."""
    parser = subparsers.add_parser(
        "replay", help="push scenario-driven notification sequences to a receiver",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    parser.add_argument("--list", action="store_true", help="list the bundled scenarios and exit")
    parser.add_argument("--target", metavar="URL", type=url(), help="the receiver's notification URL")
    parser.add_argument("--issuer-id", metavar="ID", help="force this 10-character issuer id")
    parser.add_argument("--seed", type=integer(0, MAX_INT), metavar="N", help="override every scenario's seed")
    parser.add_argument("--time-scale", type=number(0, 1e6), default=0.0, metavar="F",
                        help="virtual seconds per real second; 0 = as fast as possible (default)")
    parser.add_argument("--state-url", metavar="TEMPLATE", type=url(),
                        help="state probe with {cardId}: judge every card's end state")
    parser.add_argument("--settle", type=number(0, 600), default=DEFAULT_SETTLE,
                        metavar="S", help="seconds the end state may take to appear, the probe "
                        "polled until it matches (asynchronous receivers; default: %(default)g)")
    _add_sending_options(parser)
    add_auth_options(parser)
    add_tls_options(parser)
    parser.add_argument("--sign-secret", metavar="whsec_...", default=os.environ.get(SIGN_ENV),
                        help=f"add Standard Webhooks signature headers (or ${SIGN_ENV})")
    store = parser.add_argument_group("outbox and reports")
    store.add_argument("--db", default=str(DEFAULT_PATH), metavar="PATH", help="outbox (default: %(default)s)")
    store.add_argument("--resume", metavar="RUN_ID", help="resume this run's suite (default: resume "
                       "an unfinished run of the same command, else start afresh)")
    store.add_argument("--report-json", metavar="FILE")
    store.add_argument("--report-junit", metavar="FILE", help="JUnit XML, one test case per expectation")
    store.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_command)


def _add_sending_options(parser: argparse.ArgumentParser) -> None:
    send = parser.add_argument_group("sending (D1's retry rules: see docs)")
    send.add_argument("--concurrency", type=integer(1, 1000), default=4, metavar="N",
                      help="connections to the target, in all (default: %(default)s)")
    send.add_argument("--senders", type=integer(1, 64), default=1, metavar="N",
                      help="sender processes for a plan of over 500 deliveries, each on its own cards, "
                           "sharing the connections; worth it with cores to spare (default: %(default)s)")
    send.add_argument("--timeout", type=number(0, MAX_SECONDS, above=True), default=10.0, metavar="S")
    send.add_argument("--max-attempts", type=integer(1, 1000), default=8, metavar="N")
    send.add_argument("--backoff-base", type=number(0, MAX_SECONDS), default=1.0, metavar="S")
    send.add_argument("--backoff-factor", type=number(1, 100), default=2.0, metavar="F")
    send.add_argument("--backoff-cap", type=number(0, MAX_SECONDS), default=60.0, metavar="S")
    send.add_argument("--keep-retrying-unreachable", action="store_true",
                      help="when the target refuses connections from the start, retry as D1 would "
                           "(default: stop at once with exit 2)")


def sender_config(args: argparse.Namespace) -> SenderConfig:
    """The sender settings from the options (validated; secrets stay in memory only)."""
    check_files(args, "client_cert", "client_key", "ca_cert")
    retry = RetryPolicy(max_attempts=args.max_attempts, base=args.backoff_base,
                        factor=args.backoff_factor, cap=args.backoff_cap)
    return SenderConfig(args.target, issuer_id=args.issuer_id or DEFAULT_ISSUER_ID, timeout=args.timeout,
                        concurrency=args.concurrency, retry=retry, auth=build_auth(args),
                        sign_secret=args.sign_secret, ca_cert=args.ca_cert,
                        client_cert=args.client_cert, client_key=args.client_key,
                        keep_retrying_unreachable=args.keep_retrying_unreachable)


def _list() -> int:
    for name, description in bundled_scenarios().items():
        print(f"{name:<24} {description}")
    return EXIT_OK


def run_command(args: argparse.Namespace) -> int:
    """Plan, deliver and judge every scenario; print a summary; write reports."""
    if args.list:
        return _list()
    if not args.scenarios:
        raise UsageError("give at least one SCENARIO (a bundled name, a file or a folder; see --list)")
    if not args.target:
        raise UsageError("--target is required (the receiver's notification URL)")
    # A replay at time scale 0 streams its plan through a writer process: it started with the
    # command (or starts now) and gets ready while the scenarios are read and the outbox opened.
    with started_ahead(start=args.time_scale == 0 and str(args.db) != ":memory:"):
        gc.freeze()  # the modules' objects live as long as the command: no collection walks them
        results = _replay(args)
    print_results(results)
    write_reports(args, results)
    return EXIT_FAILED if any(r.failed for r in results) else EXIT_OK


def _replay(args: argparse.Namespace) -> list[ScenarioResult]:
    refs = resolve_scenarios(args.scenarios)
    config = sender_config(args)
    probe = None
    if args.state_url:
        # Only --state-url needs the checker's probe; its import (hypothesis) costs a replay ~0.5 s.
        from d1sim.simulator.check.transport import HttpProbe

        probe = HttpProbe(args.state_url, timeout=args.timeout)
    bars = ProgressBars(enabled=not args.no_progress)
    try:
        with Outbox(args.db) as outbox:
            replayer = Replayer(outbox, config, seed=args.seed, time_scale=args.time_scale, probe=probe,
                                progress=bars.for_scenario, issuer_id=args.issuer_id,
                                settle=args.settle, senders=args.senders)
            return replayer.run_suite(refs, resume=args.resume)
    finally:
        bars.close()
        if probe is not None:
            probe.close()
