"""How D1 authenticates its calls to the receiver: no auth, a static bearer, or OAuth2.

Every mode has the same methods: ``headers(client)`` gives the headers of the next POST,
``on_unauthorized(rejected)`` says, after a 401, whether repeating the POST once may help, and
``describe()`` gives the public settings for a run's options. Secrets stay inside these
objects: they appear in no repr, exception, log or stored option. ``Signer`` adds Standard
Webhooks signature headers, an opt-in extra that D1 does not document. Mutual TLS is not a
header but a client setting: see ``d1sim.simulator.delivery.engine.build_client``.

Example::

    >>> StaticBearer("t0ken").headers(None)
    {'Authorization': 'Bearer t0ken'}
    >>> NoAuth().on_unauthorized()
    False
"""

from __future__ import annotations

import base64
import hmac
import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from d1sim.simulator.errors import UsageError
from d1sim.simulator.redaction import mask_text

if TYPE_CHECKING:  # a client is handed in; only fetching a token needs httpx itself
    import httpx

# Refresh a token this long before it expires, so a POST never carries one about to lapse.
REFRESH_MARGIN = 30.0


class AuthError(UsageError):
    """The token endpoint failed; the message names its URL and status, never a secret."""


class Auth(Protocol):
    """An outbound authentication mode."""

    def headers(self, client: httpx.Client) -> dict[str, str]: ...

    def on_unauthorized(self, rejected: str | None = None) -> bool: ...

    def describe(self) -> dict[str, Any]: ...


class NoAuth:
    """No Authorization header (a D1 tenant with the OAuth step switched off)."""

    def headers(self, client: httpx.Client) -> dict[str, str]:
        """No headers."""
        return {}

    def on_unauthorized(self, rejected: str | None = None) -> bool:
        """Nothing to refresh: a 401 stands."""
        return False

    def describe(self) -> dict[str, Any]:
        """The mode, for run options."""
        return {"mode": "none"}

    def secrets(self) -> tuple[str, ...]:
        """Values to mask wherever they show up (see :mod:`d1sim.simulator.redaction`)."""
        return ()


class StaticBearer(NoAuth):
    """The same bearer token on every POST."""

    def __init__(self, token: str) -> None:
        if not token:
            raise UsageError("the static bearer token is empty")
        self._header = f"Bearer {token}"

    def __repr__(self) -> str:
        return "StaticBearer(token=***)"

    def headers(self, client: httpx.Client) -> dict[str, str]:
        """The fixed Authorization header."""
        return {"Authorization": self._header}

    def describe(self) -> dict[str, Any]:
        """The mode, for run options."""
        return {"mode": "bearer"}

    def secrets(self) -> tuple[str, ...]:
        """The token."""
        return (self._header.removeprefix("Bearer "),)


class OAuth2ClientCredentials(NoAuth):
    """Tokens from the issuer's token endpoint (client credentials grant), cached until expiry.

    Thread-safe: the sender's workers share one instance and one cached token.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not token_url.startswith(("http://", "https://")):
            raise UsageError(f"token URL must be http(s), not {token_url!r}")
        self.token_url, self.client_id, self.scope = token_url, client_id, scope
        self._secret = client_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._header: str | None = None
        self._expires = 0.0
        self.fetches = 0  # how many tokens were fetched, for reports and tests

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials({self.token_url!r}, client_id={self.client_id!r})"

    def __getstate__(self) -> dict[str, Any]:
        # A sender process of its own (see d1sim.simulator.delivery.lanes) fetches its own token.
        return {**self.__dict__, "_lock": None, "_header": None, "_expires": 0.0, "fetches": 0}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def headers(self, client: httpx.Client) -> dict[str, str]:
        """A valid bearer header, fetching a token first when none is cached or it is expiring."""
        with self._lock:
            if self._header is None or self._clock() >= self._expires:
                self._header, lifetime = self._fetch(client)
                early = min(REFRESH_MARGIN, lifetime / 10)
                self._expires = self._clock() + lifetime - early
            return {"Authorization": self._header}

    def on_unauthorized(self, rejected: str | None = None) -> bool:
        """Drop the rejected token so the next ``headers`` fetches a new one; worth one retry."""
        with self._lock:
            # Workers may all be rejected with the same old token: only the first one drops it.
            if rejected is None or rejected == self._header:
                self._header = None
        return True

    def secrets(self) -> tuple[str, ...]:
        """The client secret and the token in use."""
        token = self._header.removeprefix("Bearer ") if self._header else ""
        return (self._secret, token)

    def describe(self) -> dict[str, Any]:
        """The mode and its public settings, for run options."""
        return {
            "mode": "oauth2",
            "token_url": self.token_url,
            "client_id": self.client_id,
            "scope": self.scope,
        }

    def _fetch(self, client: httpx.Client) -> tuple[str, float]:
        import httpx

        form = {"grant_type": "client_credentials", **({"scope": self.scope} if self.scope else {})}
        try:
            response = client.post(self.token_url, data=form, auth=(self.client_id, self._secret))
        except httpx.HTTPError as exc:
            raise AuthError(
                self._hide(
                    f"token endpoint {self.token_url} unreachable: {type(exc).__name__}: {exc}"
                )
            ) from None
        self.fetches += 1
        if response.status_code != 200:
            raise AuthError(
                self._hide(
                    f"token endpoint {self.token_url} answered "
                    f"{response.status_code}: {response.text[:200]}"
                )
            )
        return self._parse(response.content)

    def _parse(self, content: bytes) -> tuple[str, float]:
        try:
            reply = orjson.loads(content)
            token, lifetime = reply["access_token"], float(reply.get("expires_in", 900))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            token, lifetime = None, 0.0
        if not isinstance(token, str) or not token or not 0 <= lifetime < math.inf:
            raise AuthError(
                f"token endpoint {self.token_url} sent no usable access_token and expires_in"
            )
        return f"Bearer {token}", lifetime

    def _hide(self, message: str) -> str:
        # An echoing endpoint must not smuggle the secret (or its Basic header) into a message.
        return mask_text(message, (self._secret,))


# Option names whose values are credentials: run options are stored and shown, secrets never.
_SECRET_WORDS = ("secret", "password", "token", "authorization", "bearer", "api_key", "apikey")
_NOT_SECRET = frozenset({"token_url", "tokenurl"})


def scrub_secrets(value: Any) -> Any:
    """A copy of options with the value of every secret-looking key replaced by ``***``."""
    if isinstance(value, Mapping):
        return {
            k: "***" if _is_secret(str(k)) and v is not None else scrub_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub_secrets(v) for v in value]
    return value


def _is_secret(name: str) -> bool:
    name = name.lower().replace("-", "_")
    return name not in _NOT_SECRET and any(word in name for word in _SECRET_WORDS)


class Signer:
    """Standard Webhooks headers (webhook-id, -timestamp, -signature): d1sim's opt-in extra."""

    def __init__(self, secret: str) -> None:
        try:
            self._webhook = Webhook(secret)
            self._key = base64.b64decode(secret.removeprefix("whsec_") + "==")
        except (ValueError, EmptyWebhookSecretError):
            raise UsageError("the signing secret is not a base64 'whsec_...' secret") from None

    def __repr__(self) -> str:
        return "Signer(secret=***)"

    def headers(self, msg_id: str, body: bytes, now: float) -> dict[str, str]:
        """The three headers for ``body`` sent at Unix time ``now``."""
        stamp = int(now)
        try:
            when = datetime.fromtimestamp(stamp, UTC)
            signature = self._webhook.sign(msg_id, when, body.decode())
        except UnicodeDecodeError:
            # A deliberately broken body is still signed byte for byte, as the spec defines.
            digest = hmac.digest(self._key, f"{msg_id}.{stamp}.".encode() + body, "sha256")
            signature = f"v1,{base64.b64encode(digest).decode()}"
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature,
        }
