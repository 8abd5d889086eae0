"""``d1sim runs list`` and ``d1sim deliveries list|show|resend``: look into the outbox.

Exit codes: 0 ok, 1 a resend did not get delivered, 2 usage error (unknown run or delivery).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from d1sim.simulator.cli.options import (
    MAX_INT,
    MAX_SECONDS,
    add_auth_options,
    add_tls_options,
    build_auth,
    check_files,
    integer,
    number,
    url,
)
from d1sim.simulator.delivery.engine import SenderConfig, resend
from d1sim.simulator.delivery.outbox import DEFAULT_PATH, STATES, Outbox, StoredDelivery
from d1sim.simulator.delivery.outbox_records import Headers
from d1sim.simulator.errors import EXIT_FAILED, EXIT_OK, UsageError
from d1sim.simulator.redaction import mask_attempt, mask_text, strip_userinfo


def add_parser(subparsers: Any) -> None:
    """Register ``runs`` and ``deliveries``."""
    runs = subparsers.add_parser("runs", help="list the replay runs in the outbox")
    runs_sub = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    _with_db(runs_sub.add_parser("list", help="every run, newest first")).set_defaults(func=list_runs)

    deliveries = subparsers.add_parser("deliveries", help="list, show or resend a run's deliveries")
    sub = deliveries.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = _with_db(sub.add_parser("list", help="a run's deliveries, in order"))
    listing.add_argument("run_id", metavar="RUN_ID")
    listing.add_argument("--state", choices=STATES, help="only deliveries in this state (dead: dead letters)")
    listing.add_argument("--limit", type=integer(0, 100_000), default=50)
    listing.add_argument("--offset", type=integer(0, MAX_INT), default=0)
    listing.set_defaults(func=list_deliveries)
    show = _with_db(sub.add_parser("show", help="one delivery: body, every attempt and the headers it sent"))
    show.add_argument("delivery_id", type=integer(1, MAX_INT), metavar="DELIVERY_ID")
    show.set_defaults(func=show_delivery)
    again = _with_db(sub.add_parser("resend", help="send one delivery again now (fresh retry budget)"))
    again.add_argument("delivery_id", type=integer(1, MAX_INT), metavar="DELIVERY_ID")
    again.add_argument("--target", metavar="URL", type=url(), help="default: the run's target")
    again.add_argument("--timeout", type=number(0, MAX_SECONDS, above=True), default=10.0, metavar="S")
    add_auth_options(again)
    add_tls_options(again)
    again.set_defaults(func=resend_delivery)


def _with_db(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--db", default=str(DEFAULT_PATH), metavar="PATH", help="outbox (default: %(default)s)")
    return parser


def _open(args: argparse.Namespace) -> Outbox:
    if args.db != ":memory:" and not os.path.exists(args.db):
        raise UsageError(
            f"no outbox at {args.db} (run 'd1sim replay SCENARIO --target URL --db {args.db}' first, or give --db)"
        )
    return Outbox(args.db)


def list_runs(args: argparse.Namespace) -> int:
    """One line per run: id, created, scenario, status, counts, target."""
    with _open(args) as outbox:
        runs = outbox.runs()
        if not runs:
            print(f"no runs yet in {args.db}")
            return EXIT_OK
        print(f"{'RUN':<17}  {'CREATED':<20}  {'SCENARIO':<24} {'STATUS':<11} "
              f"{'PENDING':>7} {'DELIVERED':>9} {'DEAD':>5}  TARGET")
        for run in runs:
            counts = outbox.summary(run.id)
            created = run.created.replace("+00:00", "Z")
            print(f"{run.id:<17}  {created:<20}  {run.name:<24} {run.status:<11} "
                  f"{counts['pending']:>7} {counts['delivered']:>9} {counts['dead']:>5}  {strip_userinfo(run.target)}")
    return EXIT_OK


def list_deliveries(args: argparse.Namespace) -> int:
    """One line per delivery: id, seq, state, attempts, last answer, cards, statuses, fault."""
    with _open(args) as outbox:
        if outbox.run(args.run_id) is None:
            raise UsageError(f"no run {args.run_id}; see 'd1sim runs list --db {args.db}'")
        for item in outbox.deliveries(args.run_id, args.state, args.limit, args.offset):
            print(_line(item))
    return EXIT_OK


def _line(item: StoredDelivery) -> str:
    d = item.delivery
    answer = item.last_status if item.last_status is not None else mask_text(item.last_error or "-")
    cards = ",".join(sorted(set(d.card_ids)))
    fault = f"  fault={d.fault}" if d.fault else ""
    return (f"{item.id:>7}  seq={d.seq:<6} {item.state:<9} attempts={item.attempts:<2} last={answer}  "
            f"due={d.due:g}s  {'/'.join(d.statuses)}  cards={cards}{fault}")


def show_delivery(args: argparse.Namespace) -> int:
    """The delivery's record, its body (pretty JSON), every attempt and the request headers it sent."""
    with _open(args) as outbox:
        item = outbox.delivery(args.delivery_id)
    if item is None:
        raise UsageError(f"no delivery {args.delivery_id} in {args.db}")
    print(_line(item))
    print(f"correlation id: {item.delivery.correlation_id}  key: {item.delivery.key}")
    print(_pretty(item.delivery.body))
    for a in item.history:
        a = mask_attempt(a)  # also what an older d1sim stored unmasked
        answer = a.status_code if a.status_code is not None else a.error
        extra = f"  warning: {a.warning}" if a.warning else ""
        print(f"attempt {a.number}: {answer} in {a.latency_ms:.0f} ms  {_excerpt(a.response)}{extra}")
        print(*_header_lines(a.request_headers), sep="\n")
    return EXIT_OK


def _header_lines(headers: Headers | None) -> list[str]:
    """An attempt's request headers, one indented ``name: value`` line each (already masked)."""
    if headers is None:
        return ["  request headers: not recorded"]
    if not headers:
        return ["  request headers: none (no request went out)"]
    return ["  request headers:", *(f"    {name}: {value}" for name, value in headers)]


def _excerpt(response: bytes, limit: int = 200) -> str:
    """A response body as text (escapes for bytes that are not UTF-8), never a Python repr."""
    if not response:
        return "(empty body)"
    text = response[:limit].decode("utf-8", "backslashreplace")
    return " ".join(text.split()) + (" ..." if len(response) > limit else "")


def _pretty(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body.decode("utf-8", "replace")


def resend_delivery(args: argparse.Namespace) -> int:
    """Requeue one delivery and send it now, to the run's target unless --target is given."""
    check_files(args, "client_cert", "client_key", "ca_cert")
    with _open(args) as outbox:
        item = outbox.delivery(args.delivery_id)
        if item is None:
            raise UsageError(f"no delivery {args.delivery_id} in {args.db}")
        run = outbox.run(item.run_id)
        target = args.target or (run.target if run else None)
        config = SenderConfig(str(target), timeout=args.timeout, concurrency=1, auth=build_auth(args),
                              ca_cert=args.ca_cert, client_cert=args.client_cert, client_key=args.client_key)
        summary = resend(outbox, args.delivery_id, config)
        print(_line(outbox.delivery(args.delivery_id) or item))
    return EXIT_OK if summary.delivered else EXIT_FAILED
