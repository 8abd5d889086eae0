"""``d1sim load SCENARIO --target URL``: send a scenario's notifications with Locust, on many machines.

Runs the Locust user class ``d1sim.simulator.load.locustfile`` headless: alone (``--workers 0``),
or as a master with ``--workers N`` worker processes on this machine; ``--print`` shows the exact
``locust`` lines instead, to start the master here and the workers on other machines
(docs/load.md). Needs the optional extra: ``pip install 'd1sim[load]'``.

Exit codes: 0 every POST answered 2xx, 1 some did not (Locust's failures), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import socket
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

from d1sim.contracts.protocol import WEBHOOK_PATH
from d1sim.simulator.cli.options import BEARER_ENV, SECRET_ENV, SIGN_ENV, add_auth_options, integer
from d1sim.simulator.errors import EXIT_OK, UsageError

EPILOG = f"""\
examples:
  d1sim load bulk-file --target 'http://127.0.0.1:8090{WEBHOOK_PATH}' \\
      --users 16 --workers 2 --run-time 5m
  d1sim load bulk-file --target "$HOOK" --workers 4 --print    # the lines to run on each machine
"""
# Bounds every wait on the Locust processes past their own --run-time.
GRACE_SECONDS = 60


def add_parser(subparsers: Any) -> None:
    """Register ``d1sim load``."""
    parser = subparsers.add_parser(
        "load", help="send a scenario's notifications with Locust (many machines)",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", metavar="SCENARIO", help="a bundled name or a .yaml file")
    parser.add_argument("--target", required=True, metavar="URL",
                        help="the receiver's notification URL; may contain {issuerId}")
    parser.add_argument("--issuer-id", metavar="ID", help="force this 10-character issuer id")
    parser.add_argument("--seed", type=int, metavar="N", help="override the scenario's seed")
    parser.add_argument("--users", type=integer(1, 100_000), default=8, metavar="N",
                        help="concurrent senders over all workers (default: %(default)s)")
    parser.add_argument("--workers", type=integer(0, 1_000), default=0, metavar="N",
                        help="worker processes on this machine; 0: one process (default)")
    parser.add_argument("--run-time", default="10m", metavar="T",
                        help="stop after this long even if not done, e.g. 90s, 10m (default: %(default)s)")
    parser.add_argument("--max-attempts", type=integer(1, 1000), default=3, metavar="N")
    parser.add_argument("--master-host", default="127.0.0.1", metavar="ADDR",
                        help="the address the master listens on and workers connect to (default: %(default)s)")
    parser.add_argument("--master-port", type=integer(1, 65535), metavar="PORT",
                        help="the master's port for workers (default: a free one)")
    parser.add_argument("--print", action="store_true", help="print the locust command lines and exit")
    add_auth_options(parser)
    parser.add_argument("--sign-secret", metavar="whsec_...", help=f"Standard Webhooks signatures (or ${SIGN_ENV})")
    parser.set_defaults(func=run_command)


def locustfile() -> str:
    """The path of the bundled Locust user class; UsageError when Locust is not installed."""
    if importlib.util.find_spec("locust") is None:
        raise UsageError("Locust is not installed: pip install 'd1sim[load]'")
    spec = importlib.util.find_spec("d1sim.simulator.load.locustfile")
    assert spec is not None and spec.origin is not None
    return spec.origin


def common(args: argparse.Namespace) -> list[str]:
    """The options every locust process gets: the locustfile and d1sim's own options."""
    parts = urlsplit(args.target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--target must be an http(s) URL, not {args.target!r}")
    if args.issuer_id is not None and len(args.issuer_id) != 10:
        raise UsageError(f"--issuer-id must be exactly 10 characters, not {args.issuer_id!r}")
    line = ["locust", "-f", locustfile(), "--d1-scenario", args.scenario,
            "--d1-path", parts.path or "/", "--d1-max-attempts", str(args.max_attempts)]
    for option, value in (("--d1-seed", args.seed), ("--d1-issuer-id", args.issuer_id),
                          ("--d1-oauth-token-url", args.oauth_token_url),
                          ("--d1-client-id", args.client_id), ("--d1-scope", args.scope)):
        if value is not None:
            line += [option, str(value)]
    return line


def commands(args: argparse.Namespace, port: int) -> list[list[str]]:
    """The locust command lines: one process, or a master and its workers."""
    host = f"{urlsplit(args.target).scheme}://{urlsplit(args.target).netloc}"
    run = ["--headless", "--host", host, "-u", str(args.users), "-r", str(args.users),
           "--run-time", args.run_time, "--only-summary"]
    if args.workers == 0:
        return [[*common(args), *run]]
    master = [*common(args), *run, "--master", "--expect-workers", str(args.workers),
              "--master-bind-host", args.master_host, "--master-bind-port", str(port)]
    worker = [*common(args), "--worker", "--master-host", args.master_host, "--master-port", str(port)]
    return [master, *[worker] * args.workers]


def secrets_env(args: argparse.Namespace) -> dict[str, str]:
    """Secrets travel to the locust processes in their environment, never on a command line."""
    env = dict(os.environ)
    for name, value in ((BEARER_ENV, args.bearer_token), (SECRET_ENV, args.client_secret),
                        (SIGN_ENV, args.sign_secret)):
        if value:
            env[name] = value
    return env


def run_command(args: argparse.Namespace) -> int:
    """Print the locust lines, or run them and return the master's exit code."""
    if args.client_id and not args.oauth_token_url:
        raise UsageError("--client-id needs --oauth-token-url")
    port = args.master_port or _free_port()
    lines = commands(args, port)
    if args.print:
        for line in lines:
            print(shlex.join(line))
        return EXIT_OK
    env = secrets_env(args)
    python = [sys.executable, "-m", "locust"]
    processes = [subprocess.Popen([*python, *line[1:]], env=env) for line in lines]
    try:
        code = processes[0].wait(_seconds(args.run_time) + GRACE_SECONDS)
        for worker in processes[1:]:
            worker.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        raise UsageError("locust did not stop within its run time plus a minute") from None
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    return code


def _seconds(run_time: str) -> float:
    """Locust's run time (``90``, ``90s``, ``10m``, ``1h30m``) in seconds."""
    from locust.util.timespan import parse_timespan

    try:
        return float(parse_timespan(run_time))
    except ValueError as exc:
        raise UsageError(f"--run-time: {exc}") from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
