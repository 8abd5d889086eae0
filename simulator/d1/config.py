"""The mock D1's settings: each issuer's (admin API, --config file) and the server's own.

An issuer's settings are one JSON object checked against ``schemas/sim-issuer.schema.json``.
Secrets (``auth.token``, ``auth.clientSecret``, ``signSecret``) are kept for sending but are
write-only: :meth:`IssuerSettings.public` is what any answer shows. Inbound client secrets
(``clients``) are not kept at all, only their hashes (see :mod:`d1sim.simulator.d1.store`).

Example::

    >>> s = IssuerSettings.parse({"issuerId": "ISSUER0001", "webhookUrl": "http://h/x",
    ...                           "auth": {"type": "bearer", "token": "s3cret"}})
    >>> s.public()["auth"]
    {'type': 'bearer', 'token': '***'}
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml
from jsonschema.exceptions import best_match

from d1sim.contracts.notification.documents import load_document
from d1sim.contracts.payloads.inbound import field_name
from d1sim.contracts.protocol import ADMIN_PREFIX
from d1sim.contracts.scenario.loading import Scenario, bundled_scenarios, load_bundled
from d1sim.simulator.delivery.auth import Auth, NoAuth, OAuth2ClientCredentials, StaticBearer
from d1sim.simulator.delivery.engine import SenderConfig
from d1sim.simulator.delivery.retry import RetryPolicy
from d1sim.simulator.errors import UsageError
from d1sim.simulator.redaction import mask_value

ADMIN_TOKEN_ENV = "D1SIM_ADMIN_TOKEN"
ISSUER_SCHEMA = "sim-issuer.schema.json"
DEFAULTS: Mapping[str, Any] = {
    "auth": {"type": "none"},
    "maxOperations": 10,
    "defaultScenario": "happy-path",
    "timeScale": 1.0,
    "requireToken": True,
    "timeout": 10.0,
    "retry": {},
    "signSecret": None,
}
SECRET_FIELDS = (("auth", "token"), ("auth", "clientSecret"), ("signSecret",))
ORDER_BODY_LIMIT = 1024 * 1024
BATCH_BODY_LIMIT = 16 * 1024 * 1024


class SettingsError(UsageError):
    """Issuer settings that cannot be used; ``field`` names the offending one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class RemoteUrlRefused(SettingsError):
    """A URL off this machine, on a server that sends only to loopback (403: policy, not syntax)."""


class MissingServerFile(SettingsError):
    """A file the settings name is not on the server (409: put it there and send them again)."""


@cache
def bundled_names() -> tuple[str, ...]:
    """The bundled scenarios' names (read once: loading them all takes milliseconds)."""
    return tuple(bundled_scenarios())


@cache
def bundled(name: str) -> Scenario:
    """A bundled scenario, loaded once (scenarios are immutable values)."""
    return load_bundled(name)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_document(ISSUER_SCHEMA))


def check_settings(raw: Any) -> None:
    """Raise :class:`SettingsError` naming the first problem of ``raw`` against the schema."""
    error = best_match(_validator().iter_errors(raw))
    if error is None:
        return
    where = field_name(error.absolute_path)
    if where == "auth" and error.validator == "oneOf":
        raise SettingsError(
            "auth",
            "type none takes nothing else; bearer needs token; oauth2 "
            "needs tokenUrl, clientId and clientSecret (and optionally scope)",
        )
    message = error.message
    for secret in _secret_values(raw if isinstance(raw, Mapping) else {}):
        message = message.replace(secret, "***")  # the schema's message quotes the value
    raise SettingsError(where, message)


def _secret_values(raw: Mapping[str, Any]) -> list[str]:
    values = [_dig(raw, path) for path in SECRET_FIELDS]
    values += [c.get("clientSecret") for c in raw.get("clients") or () if isinstance(c, Mapping)]
    return [v for v in values if isinstance(v, str) and v]


def _dig(raw: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = raw
    for name in path:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value


@dataclass(frozen=True)
class IssuerSettings:
    """One issuer's checked settings (defaults filled in); ``data`` holds secrets: never show it."""

    issuer_id: str
    data: Mapping[str, Any]

    def __repr__(self) -> str:
        return f"IssuerSettings({self.issuer_id!r})"

    @classmethod
    def parse(cls, raw: Any, previous: IssuerSettings | None = None) -> IssuerSettings:
        """Check ``raw`` and merge it over ``previous`` (fields left out keep their value)."""
        check_settings(raw)
        merged = {**DEFAULTS, **(previous.data if previous else {}), **raw}
        merged.pop("clients", None)
        if "webhookUrl" not in merged:
            raise SettingsError("webhookUrl", "required when an issuer is registered")
        if merged["defaultScenario"] not in bundled_names():
            raise SettingsError("defaultScenario", f"no bundled scenario {merged['defaultScenario']!r}")
        settings = cls(merged["issuerId"], merged)
        settings.sender_config()  # fail now on unreadable TLS files or a bad signing secret
        return settings

    @property
    def target(self) -> str:
        """The URL notifications are POSTed to."""
        return str(self.data["webhookUrl"]).replace("{issuerId}", self.issuer_id)

    @property
    def time_scale(self) -> float:
        return float(self.data["timeScale"])

    @property
    def max_operations(self) -> int:
        return int(self.data["maxOperations"])

    @property
    def default_scenario(self) -> str:
        return str(self.data["defaultScenario"])

    @property
    def require_token(self) -> bool:
        return bool(self.data["requireToken"])

    def public(self) -> dict[str, Any]:
        """The settings as an answer may show them: each secret set is replaced by ``***``."""
        shown = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in self.data.items()}
        for path in SECRET_FIELDS:
            holder = shown if len(path) == 1 else shown.get(path[0])
            if isinstance(holder, dict) and holder.get(path[-1]) is not None:
                holder[path[-1]] = "***"
        return mask_value(shown)  # and no password in a URL's userinfo

    def sender_config(self) -> SenderConfig:
        """How the dispatcher sends to this issuer (auth, TLS, retries, timeout)."""
        tls, retry = self.data.get("tls") or {}, self.data["retry"]
        for name in ("clientCert", "clientKey", "caCert"):
            if tls.get(name) and not os.path.isfile(tls[name]):
                raise MissingServerFile(f"tls.{name}", f"no such file on the server: {tls[name]}")
        policy = RetryPolicy(
            max_attempts=retry.get("maxAttempts", 8),
            base=retry.get("base", 1.0),
            factor=retry.get("factor", 2.0),
            cap=retry.get("cap", 60.0),
        )
        return SenderConfig(
            self.data["webhookUrl"],
            issuer_id=self.issuer_id,
            timeout=float(self.data["timeout"]),
            concurrency=1,
            retry=policy,
            auth=_auth(self.data["auth"]),
            sign_secret=self.data.get("signSecret"),
            verify=tls.get("verify", True),
            ca_cert=tls.get("caCert"),
            client_cert=tls.get("clientCert"),
            client_key=tls.get("clientKey"),
        )


def _auth(raw: Mapping[str, Any]) -> Auth:
    if raw["type"] == "bearer":
        return StaticBearer(raw["token"])
    if raw["type"] == "oauth2":
        return OAuth2ClientCredentials(raw["tokenUrl"], raw["clientId"], raw["clientSecret"], raw.get("scope"))
    return NoAuth()


def load_config_file(path: str | Path) -> list[Mapping[str, Any]]:
    """The issuers of a ``--config`` YAML file: a list of issuer settings, or ``{issuers: [...]}``.

    ``${VAR}`` in a string is replaced by the environment variable, so secrets can stay out of
    the file. Each item is checked; UsageError names the file and the item.
    """
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config {path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--config {path}: {_yaml_problem(exc)}") from None
    items = doc.get("issuers") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise UsageError(f"--config {path}: expected a list of issuers (or issuers: [...])")
    items = [_expand_env(item) for item in items]
    for i, item in enumerate(items):
        try:
            check_settings(item)
            if not isinstance(item, Mapping) or "issuerId" not in item:
                raise SettingsError("issuerId", "required")
        except SettingsError as exc:
            raise UsageError(f"--config {path}: issuer #{i + 1}: {exc}") from None
    return items


def _yaml_problem(exc: yaml.YAMLError) -> str:
    # PyYAML quotes the offending line, which may hold a secret: say where, not what.
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not valid YAML: {where}{getattr(exc, 'problem', None) or 'syntax error'}"


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):
        return os.path.expandvars(value)
    if isinstance(value, Mapping):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_remote_urls(raw: Any) -> None:
    """Raise :class:`SettingsError` when a webhook or token URL in ``raw`` leaves this machine.

    For a server whose issuers come from an untrusted source (a fuzzer, a shared CI runner):
    its webhooks can then reach only loopback addresses.
    """
    if not isinstance(raw, Mapping):
        return
    auth = raw.get("auth")
    urls = [("webhookUrl", raw.get("webhookUrl"))]
    urls += [("auth.tokenUrl", auth.get("tokenUrl"))] if isinstance(auth, Mapping) else []
    for field, value in urls:
        if value is None:
            continue
        try:
            host = urlsplit(str(value)).hostname or ""
        except ValueError as exc:  # no host to tell: not a loopback one, so refused as remote ones
            raise RemoteUrlRefused(field, f"this server only sends to loopback addresses, and this URL "
                                   f"names no host it can read ({exc})") from None
        if not is_loopback(host):
            raise RemoteUrlRefused(field, f"this server only sends to loopback addresses, not {host!r} "
                                "(it runs with loopback_webhooks)")


def admin_token_for(host: str, given: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The admin token to require, or None (loopback without one).

    Raises:
        UsageError: ``host`` is reachable from other machines and no token was given: the admin
            API (register webhooks, start runs) must not be open to the network.
    """
    token = given or env.get(ADMIN_TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise UsageError(
            f"--host {host} is reachable from other machines: give --admin-token "
            f"or set {ADMIN_TOKEN_ENV} to protect the admin API ({ADMIN_PREFIX})"
        )
    return token


@dataclass(frozen=True)
class ServerSettings:
    """What ``d1sim serve`` runs with."""

    db_path: str = ".d1sim/d1sim.db"
    admin_token: str | None = None
    host: str = "127.0.0.1"  # the bound address: requests must name it (or loopback, an IP)
    public_host: str | None = None  # the name clients reach the server by, behind a proxy
    workers: int = 8
    plan_workers: int = 1
    order_limit: int = ORDER_BODY_LIMIT
    batch_limit: int = BATCH_BODY_LIMIT
    token_ttl: float = 900.0
    plan_slots: int = 2  # admin-started runs planned at once (see uploads.PlanningBudget)
    plan_seconds: float = 10.0
    loopback_webhooks: bool = False  # refuse webhook and token URLs off this machine

    def __repr__(self) -> str:
        return f"ServerSettings(db_path={self.db_path!r}, workers={self.workers})"
