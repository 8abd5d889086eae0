"""Options shared by the commands: auth, TLS, and argparse types that check every number and URL."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from d1sim.simulator.errors import UsageError

if TYPE_CHECKING:  # the auth module pulls in httpx, which `d1sim validate` does without
    from d1sim.simulator.delivery.auth import Auth

# Secrets may come from the environment: they stay out of shell history and process lists.
BEARER_ENV = "D1SIM_BEARER_TOKEN"
SECRET_ENV = "D1SIM_CLIENT_SECRET"
SIGN_ENV = "D1SIM_SIGN_SECRET"

# Ranges of the numeric options: wide enough for any real use, narrow enough that no value can
# overflow a timer, a database column or a thread pool.
MAX_INT = 2**63 - 1  # what SQLite stores
MAX_FLOAT = 1e9
MAX_SECONDS = 86_400.0  # a timeout, a back-off or a latency of at most a day
MAX_URL = 2048
PORT = (0, 65535)
HTTP_STATUS = (100, 599)


def add_auth_options(parser: argparse.ArgumentParser) -> None:
    """--bearer-token, or OAuth2 client credentials against the receiver's token endpoint."""
    auth = parser.add_argument_group("how D1 authenticates to the receiver (default: no auth)")
    auth.add_argument("--bearer-token", metavar="T",
                      help=f"a static bearer token (or ${BEARER_ENV})")
    auth.add_argument("--oauth-token-url", metavar="URL", type=url(),
                      help="the issuer's OAuth2 token endpoint (client credentials grant)")
    auth.add_argument("--client-id", metavar="ID")
    auth.add_argument("--client-secret", metavar="S",
                      help=f"(or ${SECRET_ENV})")
    auth.add_argument("--scope", metavar="S")


def build_auth(args: argparse.Namespace) -> Auth:
    """The auth mode D1 uses for this receiver, from the options."""
    from d1sim.simulator.delivery.auth import NoAuth, OAuth2ClientCredentials, StaticBearer  # httpx: only here


    # The environment is read here, not as an option default, so that it is read at run time.
    if args.oauth_token_url:
        if args.bearer_token:
            raise UsageError("choose one: --bearer-token or --oauth-token-url")
        secret = args.client_secret or os.environ.get(SECRET_ENV)
        if not (args.client_id and secret):
            raise UsageError(f"--oauth-token-url needs --client-id and --client-secret (or ${SECRET_ENV})")
        return OAuth2ClientCredentials(args.oauth_token_url, args.client_id, secret, args.scope)
    if args.client_id:
        raise UsageError("--client-id needs --oauth-token-url")
    token = args.bearer_token or os.environ.get(BEARER_ENV)
    return StaticBearer(token) if token else NoAuth()


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    """Mutual TLS: D1's client certificate, and the CA that signed the receiver's."""
    tls = parser.add_argument_group("mutual TLS")
    tls.add_argument("--client-cert", metavar="FILE", help="client certificate (PEM) D1 presents")
    tls.add_argument("--client-key", metavar="FILE", help="its private key (PEM)")
    tls.add_argument("--ca-cert", metavar="FILE", help="CA bundle that signed the receiver's certificate")


def check_files(args: argparse.Namespace, *names: str) -> None:
    """Every named option that is set must be a readable file."""
    for name in names:
        value = getattr(args, name)
        if value and not os.path.isfile(value):
            raise UsageError(f"--{name.replace('_', '-')}: no such file: {value}")


def integer(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``minimum`` to ``maximum``.

    Example: ``parser.add_argument("--port", type=integer(0, 65535))`` refuses ``1e3``,
    ``70000`` and ``10^23`` with ``argument --port: ...`` and exit 2.
    """
    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) < 100 else None  # int() of 5,000 digits is slow
        except ValueError:
            value = None
        if value is None:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {_shown(text)}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be from {minimum:,} to {maximum:,}, not {value:,}")
        return value
    return parse


def number(minimum: float, maximum: float, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number from ``minimum`` (excluded with ``above``) to ``maximum``."""
    def parse(text: str) -> float:
        try:
            value = float(text) if len(text) < 100 else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, not {_shown(text)}")
        if value < minimum or value > maximum or (above and value == minimum):
            low = f"more than {minimum:g} and at most" if above else f"from {minimum:g} to"
            raise argparse.ArgumentTypeError(f"must be {low} {maximum:g}, not {text}")
        return value
    return parse


def jobs_type(per_cpu: int = 4, minimum: int = 1) -> Callable[[str], int]:
    """An argparse type for a count of processes: at most ``per_cpu`` per available CPU."""
    return integer(minimum, per_cpu * available_cpus())


def available_cpus() -> int:
    """The CPUs this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def url(*, schemes: tuple[str, ...] = ("http", "https")) -> Callable[[str], str]:
    """An argparse type: an absolute http(s) URL with a host and a numeric port, if any.

    ``{issuerId}``-style placeholders may stand in its path. ``http://[::1``, ``http://h:x/``,
    ``ftp://h/`` and a URL over 2,048 characters are refused with a message that says why.
    """
    def parse(text: str) -> str:
        if len(text) > MAX_URL:
            raise argparse.ArgumentTypeError(f"a URL of {len(text):,} characters; at most {MAX_URL:,}")
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - parsing the port is what raises on a bad one
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a usable URL: {text!r} ({exc})") from None
        if parts.scheme not in schemes:
            wanted = " or ".join(f"{s}://" for s in schemes)
            raise argparse.ArgumentTypeError(f"expected a URL starting with {wanted}, not {text!r}")
        if not parts.hostname:
            raise argparse.ArgumentTypeError(f"the URL has no host: {text!r}")
        return text
    return parse


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:30]!r}... ({len(text):,} characters)"
