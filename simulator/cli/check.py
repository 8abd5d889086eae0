"""``d1sim check --target URL``: check a receiver against the contract, one verdict per check.

Auth options say how D1 is configured for this receiver: the checker obtains its token the way
D1 does (``d1sim.simulator.delivery.auth``) and sends it with every notification, and ``rejects_missing_auth``
checks that notifications without it are refused.

Exit codes: 0 no selected check failed, 1 at least one failed, 2 usage error (unknown check,
bad URL template, bad option) or the target cannot be reached before the checks start.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import Any

from d1sim.contracts.checks import (
    CheckOutcome,
    UnknownCheck,
    registered,
    select_checks,
)
from d1sim.contracts.lifecycle.settling import DEFAULT_SETTLE
from d1sim.contracts.protocol import DEFAULT_ISSUER_ID, WEBHOOK_PATH
from d1sim.simulator.check.preflight import preflight
from d1sim.simulator.check.runner import DEFAULT_MAX_EXAMPLES, as_cases, http_context, run_checks
from d1sim.simulator.check.transport import webhook_url
from d1sim.simulator.cli.options import (
    BEARER_ENV,
    MAX_INT,
    MAX_SECONDS,
    SECRET_ENV,
    add_auth_options,
    build_auth,
    integer,
    number,
    url,
)
from d1sim.simulator.delivery.auth import Auth
from d1sim.simulator.errors import EXIT_FAILED, EXIT_OK, UsageError
from d1sim.simulator.reports.check import format_failure, format_line, format_summary, report_document
from d1sim.simulator.reports.results import write_json, write_junit
from d1sim.simulator.ticker import Ticker

MAX_SETTLE = 600.0

EPILOG = f"""\
target: a base URL gets {WEBHOOK_PATH} appended; a URL that
contains {{issuerId}} or whose path ends in /cards is used as it is.

secrets may come from {BEARER_ENV} and {SECRET_ENV} instead of the options.

examples:
  d1sim check --target http://127.0.0.1:8090 --state-url 'http://127.0.0.1:8090/cards/{{cardId}}'
  d1sim check --target https://issuer.example/hooks --bearer-token "${BEARER_ENV}" \\
      --checks rejects_missing_auth,converges_out_of_order --seed 7 --junit checks.xml
"""


# (option, type, default, metavar, help) of the run settings; each one shapes the examples.
RUN_OPTIONS: tuple[tuple[str, Any, Any, str, str], ...] = (
    ("--max-examples", integer(1, 100_000), DEFAULT_MAX_EXAMPLES, "N", "examples per check (default: %(default)s)"),
    ("--seed", integer(0, MAX_INT), 0, "N", "random seed; the same seed replays the same examples (default: 0)"),
    ("--timeout", number(0, MAX_SECONDS, above=True), 10.0, "S",
     "seconds D1 waits for an answer (default: %(default)g)"),
    ("--max-batch", integer(1, 10_000), 10, "N", "most operations per POST agreed at onboarding (default: 10)"),
    ("--issuer-id", str, DEFAULT_ISSUER_ID, "ID", "the 10-character issuer id in the path"),
    ("--settle", number(0, MAX_SETTLE), DEFAULT_SETTLE, "S",
     "seconds a state comparison polls the probe until it matches, for receivers that apply "
     "notifications asynchronously (default: %(default)g; 0 reads once)"),
)


def add_parser(subparsers: Any) -> None:
    """Register ``d1sim check`` and its options."""
    parser = subparsers.add_parser(
        "check",
        help="check a receiver against the D1 PRODUCE contract (conformance checks)",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--target", metavar="URL", type=url(), help="the receiver (see 'target' below)")
    parser.add_argument(
        "--state-url",
        metavar="TEMPLATE",
        type=url(),
        help="state probe URL with {cardId}; without it the state checks are skipped",
    )
    add_auth_options(parser)
    run = parser.add_argument_group("what to run")
    run.add_argument("--checks", metavar="ID,ID", help="run only these checks (default: all)")
    run.add_argument(
        "--skip-checks",
        metavar="ID,ID",
        help="waive these checks on purpose; reports list them as waived",
    )
    run.add_argument("--list-checks", action="store_true", help="list the check ids and exit")
    for option, kind, default, metavar, text in RUN_OPTIONS:
        run.add_argument(option, type=kind, default=default, metavar=metavar, help=text)
    out = parser.add_argument_group("reports")
    out.add_argument("--report-json", metavar="FILE", help="write the verdicts as JSON")
    out.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per check")
    out.add_argument("--db", metavar="FILE",
                     help="also record the verdicts in this SQLite file (see them with d1sim ui)")
    parser.set_defaults(func=run_command)


def _validate(args: argparse.Namespace) -> list[str] | None:
    """Check option values; return the selected check ids (None: all)."""
    if not args.target:
        raise UsageError("--target is required (the receiver's URL)")
    for name, ok, rule in (
        ("--max-examples", args.max_examples >= 1, "at least 1"),
        ("--timeout", args.timeout > 0, "more than 0 seconds"),
        ("--max-batch", args.max_batch >= 1, "at least 1"),
        ("--issuer-id", len(args.issuer_id) == 10, "exactly 10 characters"),
        ("--settle", 0 <= args.settle <= MAX_SETTLE, f"0 to {MAX_SETTLE:g} seconds"),
    ):
        if not ok:
            raise UsageError(f"{name} must be {rule}")
    ids, waived = _id_list(args.checks), _id_list(args.skip_checks)
    try:
        select_checks(ids)
        select_checks(waived or [])
    except UnknownCheck as exc:
        raise UsageError(f"{exc}; see --list-checks") from None
    args.waived = waived or []
    return ids


def _id_list(text: str | None) -> list[str] | None:
    return [i.strip() for i in text.split(",") if i.strip()] if text else None


def replay_command(args: argparse.Namespace, auth: Auth, check_id: str) -> str:
    """The command that runs exactly one check again, with secrets as variables."""
    words = ["d1sim", "check", "--target", args.target]
    if args.state_url:
        words += ["--state-url", args.state_url]
    mode = auth.describe()
    if mode["mode"] == "bearer":
        words += ["--bearer-token", f"${BEARER_ENV}"]
    elif mode["mode"] == "oauth2":
        words += [
            "--oauth-token-url",
            mode["token_url"],
            "--client-id",
            mode["client_id"],
            "--client-secret",
            f"${SECRET_ENV}",
        ] + (["--scope", mode["scope"]] if mode["scope"] else [])
    for option, _, default, _, _ in RUN_OPTIONS:
        value = getattr(args, option[2:].replace("-", "_"))
        if isinstance(value, float):
            value = f"{value:g}"
            default = f"{default:g}"
        if option != "--seed" and value != default:
            words += [option, str(value)]
    words += ["--checks", check_id, "--seed", str(args.seed)]
    return " ".join(f'"{w}"' if w.startswith("$") else shlex.quote(w) for w in words)


def _list_checks() -> int:
    for check in registered().values():
        needs = [
            w for w, on in (("state probe", check.needs_state), ("auth", check.needs_auth)) if on
        ]
        print(f"{check.id:<28} {check.summary}" + (f" [needs {', '.join(needs)}]" if needs else ""))
    return EXIT_OK


def run_command(args: argparse.Namespace) -> int:
    """Run the selected checks; print verdicts; write reports; return the exit code."""
    if args.list_checks:
        return _list_checks()
    ids = _validate(args)
    auth = build_auth(args)
    with http_context(
        args.target,
        state_url=args.state_url,
        auth=auth,
        issuer_id=args.issuer_id,
        timeout=args.timeout,
        max_batch=args.max_batch,
        settle=args.settle,
    ) as context:
        preflight(context)
        print(
            f"d1sim check {webhook_url(args.target, args.issuer_id)}  (seed {args.seed}, "
            f"{args.max_examples} examples per check, timeout {args.timeout:g} s, "
            f"settle {args.settle:g} s)",
            flush=True,
        )
        started, done = time.perf_counter(), []

        def show(outcome: CheckOutcome) -> None:
            done.append(outcome)
            print(format_line(outcome), flush=True)

        # A check can take a while (shrinking a failure): a line every few seconds shows life.
        with Ticker("d1sim check", lambda: len(done), "checks done", total=lambda: len(select_checks(ids))):
            outcomes = run_checks(
                context,
                ids,
                args.max_examples,
                args.seed,
                replay=lambda check_id: replay_command(args, auth, check_id),
                waived=args.waived,
                progress=show,
            )
    _print_failures(outcomes)
    print(f"\n{format_summary(outcomes, time.perf_counter() - started)}")
    _write_reports(args, outcomes)
    return EXIT_FAILED if any(o.failed for o in outcomes) else EXIT_OK


def _print_failures(outcomes: list[CheckOutcome]) -> None:
    for outcome in outcomes:
        if outcome.failure:
            print("\n" + format_failure(outcome.failure))


def _write_reports(args: argparse.Namespace, outcomes: list[CheckOutcome]) -> None:
    if args.report_json:
        settings = {
            "max_examples": args.max_examples,
            "timeout": args.timeout,
            "max_batch": args.max_batch,
            "issuer_id": args.issuer_id,
            "settle": args.settle,
            "waived": args.waived,
        }
        write_json(args.report_json, report_document(args.target, args.seed, outcomes, **settings))
    if args.junit:
        write_junit(args.junit, as_cases(outcomes), name="d1sim check")
    if args.db:
        from d1sim.simulator.ui.results import record_outcomes

        record_outcomes(args.db, "check", args.target, args.seed, outcomes)
        print(f"results recorded in {args.db}; browse them: d1sim ui --db {args.db}", file=sys.stderr)
    if args.report_json or args.junit:
        print(
            "reports: " + ", ".join(p for p in (args.report_json, args.junit) if p), file=sys.stderr
        )
