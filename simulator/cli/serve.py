"""``d1sim serve``: run a mock D1 -- take production orders, push their notifications.

The issuer's backend orders cards on the inbound API (``/banking/v1``) and gets PRODUCE
notifications on its webhook as each card follows its scenario on the issuer's virtual clock.
Issuers are registered with the admin API (``/_sim``) or a ``--config`` file. Everything is
kept in the database: a restart on the same ``--db`` resumes every lifecycle where it stopped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from d1sim.contracts.protocol import ADMIN_PREFIX, BANKING_PREFIX, SCENARIO_HEADER
from d1sim.simulator.cli.options import PORT, integer, jobs_type
from d1sim.simulator.d1.app import ADMIN, D1Server, create_app
from d1sim.simulator.d1.config import ADMIN_TOKEN_ENV, ServerSettings, admin_token_for, load_config_file
from d1sim.simulator.delivery.outbox import DEFAULT_PATH
from d1sim.simulator.errors import EXIT_OK, UsageError
from d1sim.simulator.web.request_log import add_log_options, install_from_args
from d1sim.simulator.web.servers import serve

EPILOG = f"""\
inbound API (issuer -> D1), under {BANKING_PREFIX}:
  POST /oauth2/token                                       client credentials -> token
  POST /issuers/{{issuerId}}/physicalCards/{{cardId}}/operations:production        order
  POST /issuers/{{issuerId}}/physicalCards/operations:production         batch of 1-1000
  GET  /issuers/{{issuerId}}/physicalCards/{{cardId}}/productionStatus              poll
  POST /issuers/{{issuerId}}/physicalCards/{{cardId}}/operations:cancelProduction   cancel
test hooks: header {SCENARIO_HEADER}: <name>, or issuerRequestId SCN-<name>-...

admin API under {ADMIN_PREFIX} (see docs/server.md); off 127.0.0.1 it needs --admin-token
(or ${ADMIN_TOKEN_ENV}).

example:
  d1sim receiver --port 8090 &
  d1sim serve --port 8080 --config issuers.yaml
"""


def add_parser(subparsers: Any) -> None:
    """Register ``d1sim serve``."""
    parser = subparsers.add_parser(
        "serve",
        help="run a mock D1: take production orders, push their notifications",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port",
        type=integer(*PORT),
        default=8080,
        help="port to bind, 0 for any free one (default: %(default)s)",
    )
    parser.add_argument(
        "--db",
        default=str(DEFAULT_PATH),
        metavar="PATH",
        help="SQLite file for issuers, orders and the outbox (default: %(default)s)",
    )
    parser.add_argument(
        "--public-host",
        metavar="NAME",
        help=f"host name clients reach the server by (behind a proxy); {ADMIN} answers only to it, "
        "IP addresses, loopback names and --host",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML list of issuers to register at start")
    parser.add_argument(
        "--admin-token",
        metavar="T",
        help=f"require this bearer token on {ADMIN_PREFIX} (or ${ADMIN_TOKEN_ENV})",
    )
    parser.add_argument(
        "--workers",
        type=integer(1, 256),
        default=8,
        metavar="N",
        help="concurrent webhook POSTs (default: %(default)s)",
    )
    parser.add_argument(
        "--plan-workers",
        type=jobs_type(minimum=0),
        default=1,
        metavar="N",
        help="processes that expand orders into lifecycles; 0 = in the server's process (default: %(default)s)",
    )
    parser.add_argument(
        "--loopback-webhooks",
        action="store_true",
        help="refuse webhook and token URLs that leave this machine (for fuzzing or shared CI)",
    )
    add_log_options(parser)
    parser.set_defaults(func=run)


def build_server(args: argparse.Namespace) -> D1Server:
    """The server from the options; UsageError for a bad port, config or missing admin token."""
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    token = admin_token_for(args.host, args.admin_token)
    issuers = load_config_file(args.config) if args.config else []
    settings = ServerSettings(
        db_path=args.db,
        admin_token=token,
        host=args.host,
        public_host=args.public_host,
        workers=args.workers,
        plan_workers=args.plan_workers,
        loopback_webhooks=args.loopback_webhooks,
    )
    try:
        return D1Server(settings, issuers)
    except UsageError as exc:
        raise UsageError(f"--config {args.config}: {exc}" if args.config else str(exc)) from None


def banner(url: str, server: D1Server) -> str:
    """What the start-up lines say: where to call, which issuers (never a secret)."""
    issuers = (
        ", ".join(f"{s.issuer_id} (time scale {s.time_scale:g})" for s in server.issuers.all())
        or f"none yet: PUT {url}{ADMIN_PREFIX}/issuers/<id>"
    )
    admin = "token required" if server.settings.admin_token else "no token (loopback only)"
    return (
        f"d1sim serve: mock D1 listening on {url}\n"
        f"  inbound: {url}{BANKING_PREFIX}  (token: POST {url}{BANKING_PREFIX}/oauth2/token)\n"
        f"  admin:   {url}{ADMIN_PREFIX}  ({admin})\n"
        f"  issuers: {issuers}\n"
        f"  db:      {server.settings.db_path}"
    )


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; owed deliveries stay in the database for the next start."""
    logging.basicConfig(level=logging.WARNING, format="d1sim serve: %(levelname)s %(message)s")
    server = build_server(args)
    try:
        app = create_app(server)
        install_from_args(app, args)
        with server.running():
            serve(
                app,
                args.host,
                args.port,
                announce=lambda url: print(banner(url, server), flush=True),
            )
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    print("d1sim serve: stopped; what is still owed resumes at the next start", file=sys.stderr)
    return EXIT_OK
