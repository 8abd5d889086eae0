"""``d1sim receiver``: run the reference receiver, a conforming webhook endpoint to test against."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from d1sim.contracts.protocol import WEBHOOK_PATH
from d1sim.simulator.cli.options import (
    HTTP_STATUS,
    MAX_INT,
    MAX_SECONDS,
    PORT,
    integer,
    number,
)
from d1sim.simulator.d1.config import is_loopback
from d1sim.simulator.errors import EXIT_OK, UsageError
from d1sim.simulator.receiver.app import TOKEN_PATH, ConfigError, ReceiverConfig, create_app
from d1sim.simulator.web.request_log import add_log_options, install_from_args
from d1sim.simulator.web.servers import serve

# Secrets may come from the environment so they stay out of the shell history and `ps`.
BEARER_ENV = "D1SIM_RECEIVER_BEARER_TOKEN"
SECRET_ENV = "D1SIM_RECEIVER_CLIENT_SECRET"
OPTION_OF = {"db_path": "--db"}

EPILOG = f"""\
endpoints:
  POST {WEBHOOK_PATH}  the webhook (204 when applied)
  POST /authz/d1/v1/oauth2/token                     OAuth2 token (with --client-id)
  GET  /cards/{{cardId}}                               state probe (404: unknown card)
  GET  /_receiver/stats                              counters        (auth as the webhook)
  POST /_receiver/reset                              forget everything, restart the knobs
                                                     (auth as the webhook; same origin only:
                                                     no foreign Origin or Host, JSON or no body)

secrets may come from {BEARER_ENV}
and {SECRET_ENV} instead of the options.

example:
  d1sim receiver --port 8090 --client-id d1 --client-secret change-me --fail-first 2
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``d1sim receiver`` and its options."""
    parser = subparsers.add_parser(
        "receiver",
        help="run the reference receiver (a conforming D1 webhook endpoint)",
        description="Run the reference receiver: applies D1 PRODUCE notifications, converges "
        "out-of-order and duplicate deliveries, and exposes a state probe.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=integer(*PORT),
        default=8090,
        help="port to bind, 0 for any free one (default: %(default)s)",
    )
    parser.add_argument(
        "--db", metavar="PATH", help="SQLite file to keep state in (default: in memory)"
    )
    parser.add_argument(
        "--public-host",
        metavar="NAME",
        help="host name clients reach the receiver by (behind a proxy, in a container network); "
        "/_receiver/reset answers only to it, IP addresses, loopback names and --host",
    )
    add_log_options(parser)
    auth = parser.add_argument_group("authentication (default: none)")
    auth.add_argument(
        "--bearer-token",
        metavar="T",
        default=os.environ.get(BEARER_ENV),
        help="accept this static bearer token",
    )
    auth.add_argument(
        "--client-id", metavar="ID", help="enable the OAuth2 token endpoint for this client"
    )
    auth.add_argument(
        "--client-secret",
        metavar="S",
        default=os.environ.get(SECRET_ENV),
        help="the client's secret (with --client-id)",
    )
    auth.add_argument(
        "--token-ttl",
        type=number(0, 365 * MAX_SECONDS, above=True),
        default=900.0,
        metavar="S",
        help="lifetime of issued tokens in seconds (default: %(default)g)",
    )
    knobs = parser.add_argument_group("failure knobs (notification endpoint only)")
    knobs.add_argument(
        "--fail-first",
        type=integer(0, MAX_INT),
        default=0,
        metavar="N",
        help="answer the first N calls with --fail-status",
    )
    knobs.add_argument(
        "--fail-status", type=integer(*HTTP_STATUS), default=503, metavar="CODE", help="(default: %(default)s)"
    )
    knobs.add_argument(
        "--latency", type=number(0, MAX_SECONDS), default=0.0, metavar="S", help="seconds added to every call"
    )
    knobs.add_argument(
        "--fault-rate",
        type=number(0, 1),
        default=0.0,
        metavar="F",
        help="answer this fraction (0-1) of calls with --fault-status",
    )
    knobs.add_argument(
        "--fault-status", type=integer(*HTTP_STATUS), default=500, metavar="CODE", help="(default: %(default)s)"
    )
    knobs.add_argument(
        "--seed", type=integer(0, MAX_INT), metavar="N", help="random seed for --fault-rate (repeatable runs)"
    )
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> ReceiverConfig:
    """Build the receiver's configuration; UsageError names the offending option."""
    if args.bearer_token is not None and args.client_id:
        raise UsageError(
            "choose one kind of auth: --bearer-token, or --client-id with --client-secret"
        )
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    if args.db and not Path(args.db).resolve().parent.is_dir():
        raise UsageError(f"--db {args.db}: the folder {Path(args.db).parent} does not exist")
    try:
        return ReceiverConfig(
            db_path=args.db or ":memory:",
            bearer_token=args.bearer_token,
            client_id=args.client_id,
            client_secret=args.client_secret,
            token_ttl=args.token_ttl,
            fail_first=args.fail_first,
            fail_status=args.fail_status,
            latency=args.latency,
            fault_rate=args.fault_rate,
            fault_status=args.fault_status,
            seed=args.seed,
            host=args.host,
            public_host=args.public_host,
        )
    except ConfigError as exc:
        option = OPTION_OF.get(exc.setting, "--" + exc.setting.replace("_", "-"))
        raise UsageError(f"{option} {exc.reason}") from None


def describe(config: ReceiverConfig) -> str:
    """What the receiver enforces, for the start-up banner (never a secret)."""
    if config.bearer_token:
        auth = "static bearer token"
    elif config.oauth:
        auth = f"OAuth2 client credentials, client id {config.client_id}"
    else:
        auth = "none"
    knobs = (
        [f"first {config.fail_first} call(s) -> {config.fail_status}"] if config.fail_first else []
    )
    knobs += (
        [f"{config.fault_rate:g} of calls -> {config.fault_status}"] if config.fault_rate else []
    )
    knobs += [f"+{config.latency:g} s latency"] if config.latency else []
    return (
        f"  auth:    {auth}\n  knobs:   {', '.join(knobs) or 'none'}\n  state:   {config.db_path}"
    )


def exposure_warning(host: str, config: ReceiverConfig) -> str | None:
    """A warning when anyone on the network could post to and reset an unauthenticated receiver."""
    if config.auth_required or is_loopback(host):
        return None
    return (
        f"d1sim receiver: warning: --host {host} is reachable from other machines and no auth "
        "is set: anyone there can post notifications and reset the state "
        "(give --bearer-token, or --client-id with --client-secret)"
    )


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C."""
    config = config_from_args(args)
    if (warning := exposure_warning(args.host, config)) is not None:
        print(warning, file=sys.stderr, flush=True)
    try:
        app = create_app(config)
    except sqlite3.Error as exc:
        raise UsageError(f"--db {args.db}: {exc}") from None
    install_from_args(app, args)

    def announce(url: str) -> None:
        token = f"  token:   POST {url}{TOKEN_PATH}\n" if config.oauth else ""
        print(
            f"d1sim receiver listening on {url}\n"
            f"  webhook: POST {url}{WEBHOOK_PATH}\n{token}"
            f"  probe:   GET  {url}/cards/{{cardId}}\n{describe(config)}",
            flush=True,
        )

    try:
        serve(app, args.host, args.port, announce=announce)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    print("d1sim receiver stopped", file=sys.stderr)
    return EXIT_OK
