"""Transports and state probes for the checker: over HTTP with httpx, or in-process over WSGI.

Where notifications go: a target with ``{issuerId}`` in it, or whose path already ends in
``/cards``, is used as it is (``{issuerId}`` filled in); any other target is a base URL and gets
D1's path ``/notifications/d1/v2/issuers/{issuerId}/cards`` appended. So ``http://host:8090``,
``http://host/api`` (receiver mounted under /api) and a full webhook URL all work.

Example::

    >>> webhook_url("http://host:8090/", "ISSUER0001")
    'http://host:8090/notifications/d1/v2/issuers/ISSUER0001/cards'
    >>> webhook_url("https://host/hooks/d1/cards", "ISSUER0001")
    'https://host/hooks/d1/cards'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from d1sim.contracts.checks import DEFAULT_TIMEOUT, NoReply, ProbeError, Reply
from d1sim.contracts.protocol import DEFAULT_ISSUER_ID, WEBHOOK_PATH
from d1sim.simulator.errors import UsageError

WSGI_BASE = "http://receiver.d1sim.test"  # in-process requests need some absolute URL
EXCERPT = 200


def _require_http(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{what} must be an http:// or https:// URL, not {url!r}")


def webhook_url(target: str, issuer_id: str = DEFAULT_ISSUER_ID) -> str:
    """The URL notifications are POSTed to for ``target`` (see the module docstring).

    Raises:
        UsageError: ``target`` is not an absolute http(s) URL.
    """
    _require_http(target, "the target")
    if "{issuerId}" not in target and not urlsplit(target).path.rstrip("/").endswith("/cards"):
        target = target.rstrip("/") + WEBHOOK_PATH
    return target.replace("{issuerId}", quote(issuer_id, safe=""))


class HttpTransport:
    """POSTs notifications to a receiver with httpx; no answer within ``timeout`` is NoReply.

    Pass ``client`` to reuse a configured one (TLS, proxies, ``httpx.WSGITransport``).
    """

    def __init__(
        self,
        target: str,
        *,
        issuer_id: str = DEFAULT_ISSUER_ID,
        timeout: float = DEFAULT_TIMEOUT,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = webhook_url(target, issuer_id)
        self.timeout = timeout
        self.client = client or httpx.Client()

    def post(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """Send one POST; raise :class:`NoReply` on a timeout or a connection error."""
        started = time.perf_counter()
        try:
            response = self.client.post(
                self.url, content=body, headers=dict(headers), timeout=self.timeout
            )
        except httpx.TimeoutException:
            raise NoReply(
                f"timed out after {self.timeout:g} s",
                elapsed=time.perf_counter() - started,
                timed_out=True,
            ) from None
        except httpx.TransportError as exc:
            raise NoReply(_network_error(exc), elapsed=time.perf_counter() - started) from None
        return Reply(
            response.status_code,
            dict(response.headers),
            response.content,
            time.perf_counter() - started,
        )

    def ensure_reachable(self) -> None:
        """Fail fast, before any check, when nothing answers at the target at all.

        Any HTTP answer counts (even 404 or 405): only a refused or unresolvable connection is
        "unreachable". Raises UsageError with the reason.
        """
        try:
            self.client.request("HEAD", self.url, timeout=self.timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
            raise UsageError(f"cannot reach the target {self.url}: {_network_error(exc)}") from None
        except httpx.HTTPError:
            return  # it connected: slowness and odd answers are the checks' business

    def close(self) -> None:
        self.client.close()


def _network_error(exc: httpx.HTTPError) -> str:
    # httpx wraps the OS error; its text ("[Errno 111] Connection refused") is the useful part.
    cause = exc.__cause__ or exc.__context__
    return f"{type(exc).__name__}: {cause or exc}"


class _CatchingWsgi:
    """A WSGI app that answers 500 when the wrapped app raises, as a real server would."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            return self.app(environ, start_response)
        except Exception as exc:  # the receiver under test may raise anything
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"the application raised {type(exc).__name__}: {exc}".encode()]


def wsgi_client(app: Callable[..., Any]) -> httpx.Client:
    """An httpx client that calls ``app`` in-process (no socket) at :data:`WSGI_BASE`."""
    return httpx.Client(transport=httpx.WSGITransport(app=_CatchingWsgi(app)), base_url=WSGI_BASE)


class WsgiTransport(HttpTransport):
    """POSTs to a WSGI app in-process. There is no socket, so ``timeout`` cannot cut a slow app
    short: its answer's ``elapsed`` is what ``responds_in_time`` judges.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        *,
        issuer_id: str = DEFAULT_ISSUER_ID,
        path: str = WEBHOOK_PATH,
    ) -> None:
        super().__init__(WSGI_BASE + path, issuer_id=issuer_id, client=wsgi_client(app))


class HttpProbe:
    """The state probe over HTTP: GET a URL template with ``{cardId}``.

    200 with a JSON object is the held state, 404 is an unknown card (None); anything else,
    or no answer, raises :class:`ProbeError` saying what came back.
    """

    def __init__(
        self, template: str, *, client: httpx.Client | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        if "{cardId}" not in template:
            raise UsageError(f"the state URL template must contain {{cardId}}, got {template!r}")
        if not template.startswith(WSGI_BASE):
            _require_http(template.replace("{cardId}", "x"), "the state URL template")
        self.template, self.timeout = template, timeout
        self.client = client or httpx.Client()

    def __call__(self, card_id: str) -> dict[str, Any] | None:
        url = self.template.replace("{cardId}", quote(card_id, safe=""))
        try:
            response = self.client.get(url, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ProbeError(f"GET {url}: {_network_error(exc)}") from None
        if response.status_code == 404:
            return None
        held = _json_object(response.content) if response.status_code == 200 else None
        if held is None or not isinstance(held.get("status"), str):
            raise ProbeError(
                f"GET {url} answered {response.status_code} "
                f"{response.text[:EXCERPT]!r}; expected 200 with a JSON object with "
                "a 'status', or 404"
            )
        return held

    def close(self) -> None:
        self.client.close()


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def wsgi_probe(app: Callable[..., Any], path: str = "/cards/{cardId}") -> HttpProbe:
    """The state probe of a WSGI app, called in-process."""
    return HttpProbe(WSGI_BASE + path, client=wsgi_client(app))
