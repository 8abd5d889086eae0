"""Keep web pages out of d1sim's loopback APIs: a same-origin guard for Flask apps and blueprints.

A page open in the user's browser can send "simple" requests (``text/plain`` or form bodies, no
preflight) to ``http://127.0.0.1:8080``, and a DNS-rebinding page can even read the answers. So
every guarded request must name a host d1sim answers to (an IP address, a loopback name, the
bound host or the configured public host: a rebinding page's Host is its own domain name); a
write (POST, PUT, PATCH, DELETE) that comes with an ``Origin`` must come from this very server;
and a write with a body must say it is JSON (or, where allowed, YAML) -- a type no page can send
across origins without a CORS preflight, which these servers never grant.

Example::

    guard = OriginGuard(bound_host="127.0.0.1", public_host="d1sim.example.test")
    protect(blueprint, guard)              # every route of the blueprint
    protect(app, guard, prefix="/_sim")    # every route under /_sim, also those mounted later
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from flask import Blueprint, Flask, Request, Response, request

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _hostname(authority: str) -> str:
    """``example.test`` from ``Example.test:8080``, ``::1`` from ``[::1]:80`` ('' if unparsable)."""
    try:
        return (urlsplit(f"//{authority}").hostname or "").rstrip(".")
    except ValueError:
        return ""


def _netloc(origin: str) -> str | None:
    """``host:port`` of an Origin header, or None when it is not a URL (``null``, garbage)."""
    try:
        return urlsplit(origin).netloc.lower() or None
    except ValueError:
        return None


@dataclass(frozen=True)
class OriginGuard:
    """Which hosts a server answers to and which content types its writes take."""

    bound_host: str = "127.0.0.1"
    public_host: str | None = None
    write_types: frozenset[str] = JSON_TYPES

    def known_host(self, name: str) -> bool:
        """Whether a request naming host ``name`` (no port) is meant for this server."""
        name = name.lower()
        extra = {self.bound_host.lower(), (self.public_host or "").lower()} - WILDCARDS
        return _is_ip(name) or name in LOOPBACK_NAMES or name.endswith(".localhost") or name in extra

    def refusal(self, req: Request, extra_types: Iterable[str] = ()) -> Response | None:
        """The 403/415 answer ``req`` gets, or None when it may go on."""
        if not self.known_host(_hostname(req.host)):
            return forbidden(f"Host {req.host!r} is not a name this server answers to")
        if req.method in SAFE_METHODS:
            return None
        origin = req.headers.get("Origin")
        if origin is not None and _netloc(origin) != req.host.lower():
            return forbidden(f"a write from another origin ({origin}) is refused")
        if _has_body(req) and req.mimetype not in self.write_types | frozenset(extra_types):
            allowed = ", ".join(sorted(self.write_types | frozenset(extra_types)))
            shown = req.mimetype or "none"
            return _problem(415, "Unsupported media type", f"Content-Type {shown}; send {allowed}")
        return None


def _has_body(req: Request) -> bool:
    return bool(req.content_length) or req.headers.get("Transfer-Encoding") is not None


def _problem(status: int, title: str, detail: str) -> Response:
    slug = title.lower().replace(" ", "-")
    body = {"type": f"https://d1sim.dev/problems/{slug}", "title": title, "status": status, "detail": detail}
    return Response(orjson.dumps(body), status, mimetype="application/problem+json")


def forbidden(detail: str) -> Response:
    """A 403 problem answer."""
    return _problem(403, "Forbidden", detail)


def protect(
    scaffold: Flask | Blueprint,
    guard: OriginGuard,
    prefix: str | None = None,
    extra_types: Callable[[Request], Iterable[str]] = lambda req: (),
) -> None:
    """Run ``guard`` before every request of ``scaffold`` (only paths under ``prefix`` if given).

    ``extra_types(request)`` names content types one route takes besides JSON (a YAML upload).
    """

    @scaffold.before_request
    def _same_origin_only() -> Response | None:
        if prefix is not None and not (request.path == prefix or request.path.startswith(prefix + "/")):
            return None
        return guard.refusal(request, extra_types(request))
