"""One attempt of a delivery, as D1 makes it: settings, HTTP client, headers, POST, answer.

Shared by replay's sender (:mod:`d1sim.simulator.delivery.engine`) and the mock D1's dispatcher
(:mod:`d1sim.simulator.d1.dispatcher`): both hand a stored delivery to a :class:`Poster` and
get one :class:`Answer` back, which :func:`d1sim.simulator.delivery.retry.judge` turns into a verdict.

Example::

    config = SenderConfig("https://issuer.example/notifications/d1/v2/issuers/{issuerId}/cards",
                          auth=StaticBearer("t0ken"), sign_secret="whsec_...")
    with build_client(config) as client:
        answer = Poster(config, client).attempt(stored_delivery)
    print(answer.attempt.status_code, answer.retry_after)
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from d1sim.contracts.protocol import DEFAULT_ISSUER_ID
from d1sim.simulator.delivery.auth import Auth, NoAuth, Signer
from d1sim.simulator.delivery.outbox import RESPONSE_EXCERPT, Attempt, StoredDelivery
from d1sim.simulator.delivery.outbox_records import Headers
from d1sim.simulator.delivery.retry import RetryPolicy
from d1sim.simulator.errors import UsageError
from d1sim.simulator.redaction import mask_attempt, sender_secrets

if TYPE_CHECKING:  # httpx is loaded when a client is built: libcurl sends a replay without it
    import httpx

# Of an answer's body this much is read and kept; the rest is never read (the connection closes).
BODY_CAP = 64 * 1024


@dataclass(frozen=True)
class SenderConfig:
    """Where and how to send: target, timeouts, concurrency, retries, auth, signing, TLS.

    ``url`` may contain ``{issuerId}``. ``ca_cert`` trusts one CA (else the system's);
    ``client_cert``/``client_key`` present D1's client certificate (mutual TLS).
    """

    url: str
    issuer_id: str = DEFAULT_ISSUER_ID
    timeout: float = 10.0
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    auth: Auth = field(default_factory=NoAuth)
    sign_secret: str | None = field(default=None, repr=False)
    verify: bool = True
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    # False: a refused connection before any answer ends a replay at once (exit 2).
    keep_retrying_unreachable: bool = False

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise UsageError(f"target URL must start with http:// or https://, not {self.url!r}")
        if len(self.issuer_id) != 10:
            raise UsageError(f"issuer id must be exactly 10 characters, not {self.issuer_id!r}")
        if self.timeout <= 0 or self.concurrency < 1:
            raise UsageError("timeout must be > 0 and concurrency at least 1")
        if self.client_key and not self.client_cert:
            raise UsageError("a client key needs its client certificate (--client-cert)")
        if self.sign_secret is not None:
            Signer(self.sign_secret)  # fail now, with a message that does not show the secret

    @property
    def target(self) -> str:
        """The URL every notification is POSTed to."""
        return self.url.replace("{issuerId}", self.issuer_id)

    def public_options(self) -> dict[str, Any]:
        """The settings worth recording with a run: everything except secrets."""
        return {
            "target": self.target,
            "issuer_id": self.issuer_id,
            "timeout": self.timeout,
            "concurrency": self.concurrency,
            "retry": asdict(self.retry),
            "auth": self.auth.describe(),
            "signed": self.sign_secret is not None,
            "verify": self.verify,
            "ca_cert": self.ca_cert,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
            "keep_retrying_unreachable": self.keep_retrying_unreachable,
        }


@contextmanager
def client_for(config: SenderConfig, client: httpx.Client | None) -> Iterator[httpx.Client]:
    """``client`` if one was injected, else one built on first use and closed on leaving."""
    if client is not None:
        yield client
        return
    own = _OnDemand(config)
    try:
        yield own  # type: ignore[misc]
    finally:
        own.close()


class _OnDemand:
    """An ``httpx.Client`` built on first use: libcurl sends, so only a token endpoint needs one.

    Building it loads httpx and the TLS trust store, a fifth of a second a replay need not pay.
    """

    def __init__(self, config: SenderConfig) -> None:
        self.config = config
        self.client: httpx.Client | None = None

    def __getattr__(self, name: str) -> object:
        if self.client is None:
            self.client = build_client(self.config)
        return getattr(self.client, name)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def build_client(
    config: SenderConfig,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An ``httpx.Client`` pooled for ``concurrency`` workers, with the config's TLS settings.

    Pass ``transport`` (``httpx.MockTransport``, ``httpx.WSGITransport``) to stay in-process.
    """
    import httpx

    from d1sim.simulator.delivery.deadline import DeadlineTransport

    pool = config.concurrency + 2  # the token endpoint may need a connection of its own
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    verify = _tls(config)
    if transport is None:
        transport = DeadlineTransport(verify, limits)  # --timeout bounds each attempt as a whole
    return httpx.Client(timeout=config.timeout, limits=limits, transport=transport, verify=verify)


def _tls(config: SenderConfig) -> ssl.SSLContext | bool:
    if config.ca_cert is None and config.client_cert is None:
        return config.verify
    try:
        context = ssl.create_default_context(cafile=config.ca_cert if config.verify else None)
        if not config.verify:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if config.client_cert:
            context.load_cert_chain(config.client_cert, config.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the TLS certificates: {exc}") from None
    return context


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt came back with; ``failure`` is an error outside HTTP (token endpoint
    down, or a bug), which the attempt's ``error`` also describes. ``refused``: no connection
    could be made (refused, unknown host), so the receiver never saw the request."""

    attempt: Attempt
    retry_after: str | None = None
    failure: BaseException | None = None
    refused: bool = False


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    retry_after: str | None
    body: bytes
    warning: str | None = None


class Poster:
    """Makes one attempt of a delivery: headers, optional signature, POST, one 401 refresh.

    The attempt as a whole (token, POST, a refreshed POST) ends within ``config.timeout`` over
    sockets, and at most :data:`BODY_CAP` bytes of the answer are read.
    """

    def __init__(self, config: SenderConfig, client: httpx.Client) -> None:
        self.config, self.client, self.url = config, client, config.target
        self.signer = Signer(config.sign_secret) if config.sign_secret else None

    def attempt(self, item: StoredDelivery) -> Answer:
        """POST once (twice after a refreshable 401); any failure becomes the answer."""
        import httpx

        from d1sim.simulator.delivery.deadline import deadline

        started, begin = time.time(), time.perf_counter()
        status, content, retry_after, error, warning = None, b"", None, None, None
        failure: BaseException | None = None
        refused = False
        sent: list[tuple[str, str]] = []  # the headers of the last request that went out
        try:
            with deadline(self.config.timeout):
                reply = self._post(item, sent)
            status, retry_after, warning = reply.status, reply.retry_after, reply.warning
            content = reply.body[:RESPONSE_EXCERPT]
        except httpx.TimeoutException as exc:
            error = f"timeout after {self.config.timeout:g} s ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            error, refused = f"connection error: {type(exc).__name__}: {exc}", _refused(exc)
        except Exception as exc:  # AuthError (its message hides secrets) or a bug
            error, failure = f"{type(exc).__name__}: {exc}", exc
        latency = (time.perf_counter() - begin) * 1000
        attempt = Attempt(started, status, latency, content, error, warning, request_headers=tuple(sent))
        return Answer(mask_attempt(attempt, sender_secrets(self.config)), retry_after, failure, refused)

    def _post(self, item: StoredDelivery, sent: list[tuple[str, str]]) -> _Reply:
        headers = self.headers(item)
        reply = self._exchange(item, headers, sent)
        auth = self.config.auth
        if reply.status != 401 or not auth.on_unauthorized(headers.get("Authorization")):
            return reply
        again = self._exchange(item, self.headers(item), sent)
        note = "401 answered: token fetched again and the POST repeated once"
        return _Reply(again.status, again.retry_after, again.body, _joined(note, again.warning))

    def _exchange(self, item: StoredDelivery, headers: dict[str, str], sent: list[tuple[str, str]]) -> _Reply:
        """One POST; the body is read up to BODY_CAP, the rest left unread (connection closed).

        ``sent`` gets the request's headers as httpx sent them (with Host, Content-Length,
        User-Agent, and a URL's userinfo as Basic auth), also when no answer came back.
        """
        request = self.client.build_request("POST", self.url, content=item.delivery.body, headers=headers)
        try:
            response = self.client.send(request, stream=True)
        finally:
            sent[:] = sent_headers(request)
        try:
            body, over = bytearray(), False
            for chunk in response.iter_bytes():
                room = BODY_CAP - len(body)
                if len(chunk) > room:
                    body, over = body + chunk[:room], True
                    break
                body += chunk
            warning = f"answer body over {BODY_CAP // 1024} KiB: the rest was not read" if over else None
            return _Reply(response.status_code, response.headers.get("retry-after"), bytes(body), warning)
        finally:
            response.close()

    def headers(self, item: StoredDelivery) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",  # the body is read raw, up to a cap
            "x-correlation-id": item.delivery.correlation_id,
            **self.config.auth.headers(self.client),
        }
        if self.signer is not None:
            # Stable across retries, as Standard Webhooks wants for receivers' deduplication.
            msg_id = f"msg_{item.run_id}_{item.delivery.seq}"
            headers.update(self.signer.headers(msg_id, item.delivery.body, time.time()))
        return headers


def sent_headers(request: httpx.Request) -> Headers:
    """What ``Attempt.request_headers`` takes for an httpx request, once the client has sent it
    (an auth flow may add Authorization during ``send``): (name, value) pairs, names as written.

    For any sender (this one, an asyncio one): ``Attempt(..., request_headers=sent_headers(r))``.
    """
    headers = request.headers
    return tuple((name.decode(headers.encoding), value.decode(headers.encoding)) for name, value in headers.raw)


def _refused(exc: httpx.HTTPError) -> bool:
    """No TCP connection (refused, unknown host); a TLS handshake that failed is an answer."""
    import httpx

    if not isinstance(exc, httpx.ConnectError):
        return False
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return False
        cause = cause.__cause__ or cause.__context__
    return True


def _joined(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None
