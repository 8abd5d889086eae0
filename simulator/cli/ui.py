"""``d1sim ui``: browse a replay's outbox (runs, cards, attempts, check results) in a browser.

Read-only: resend from a terminal with ``d1sim deliveries resend ID --db FILE``. ``d1sim serve``
shows the same pages at ``/`` over its own database, with resend and recover.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from d1sim.simulator.d1.config import ADMIN_TOKEN_ENV, admin_token_for
from d1sim.simulator.delivery.outbox import DEFAULT_PATH
from d1sim.simulator.errors import EXIT_OK, UsageError
from d1sim.simulator.ui import create_ui_app
from d1sim.simulator.web.request_log import add_log_options, install_from_args
from d1sim.simulator.web.servers import serve

EPILOG = """\
example:
  d1sim replay happy-path --target http://127.0.0.1:8090/hook --db run.db
  d1sim ui --db run.db --port 8070      # then open http://127.0.0.1:8070/
"""


def add_parser(subparsers: Any) -> None:
    """Register ``d1sim ui``."""
    parser = subparsers.add_parser(
        "ui", help="browse an outbox in a web browser (runs, card timelines, attempts, checks)",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", default=str(DEFAULT_PATH), metavar="FILE",
                        help="the outbox to show (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8070, help="port, 0 for any free one (default: %(default)s)")
    parser.add_argument("--admin-token", metavar="T",
                        help=f"require this token (or ${ADMIN_TOKEN_ENV}); needed off loopback; "
                        "a browser logs in with it as the password")
    add_log_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve the UI until Ctrl-C or SIGTERM."""
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    if not os.path.isfile(args.db):
        raise UsageError(f"no outbox at {args.db} (run 'd1sim replay ... --db {args.db}' first, or give --db)")
    token = admin_token_for(args.host, args.admin_token)
    app = create_ui_app(args.db, token)
    install_from_args(app, args)
    try:
        serve(app, args.host, args.port,
              announce=lambda url: print(f"d1sim ui: {url}/ (database {args.db}, read-only)", flush=True))
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    print("d1sim ui: stopped", file=sys.stderr)
    return EXIT_OK
