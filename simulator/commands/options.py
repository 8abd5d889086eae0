"""Options shared by the commands that act as D1 towards a receiver (replay, check)."""

from __future__ import annotations

import argparse
import os

from d1sim.simulator.delivery.auth import Auth, NoAuth, OAuth2ClientCredentials, StaticBearer
from d1sim.simulator.errors import UsageError

# Secrets may come from the environment: they stay out of shell history and process lists.
BEARER_ENV = "D1SIM_BEARER_TOKEN"
SECRET_ENV = "D1SIM_CLIENT_SECRET"
SIGN_ENV = "D1SIM_SIGN_SECRET"
DEFAULT_ISSUER_ID = "ISSUER0001"


def add_auth_options(parser: argparse.ArgumentParser) -> None:
    """--bearer-token, or OAuth2 client credentials against the receiver's token endpoint."""
    auth = parser.add_argument_group("how D1 authenticates to the receiver (default: no auth)")
    auth.add_argument("--bearer-token", metavar="T",
                      help=f"a static bearer token (or ${BEARER_ENV})")
    auth.add_argument("--oauth-token-url", metavar="URL",
                      help="the issuer's OAuth2 token endpoint (client credentials grant)")
    auth.add_argument("--client-id", metavar="ID")
    auth.add_argument("--client-secret", metavar="S",
                      help=f"(or ${SECRET_ENV})")
    auth.add_argument("--scope", metavar="S")


def build_auth(args: argparse.Namespace) -> Auth:
    """The auth mode D1 uses for this receiver, from the options."""
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


def positive(kind: type[int] | type[float], minimum: float = 0, *, strict: bool = True):  # type: ignore[no-untyped-def]
    """An argparse type: a number above (or at least) ``minimum``, with a clear message."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum:g}, not {text}")
        return value
    return parse
