"""Mask credentials in everything d1sim stores or shows: one place for the rule.

What is masked (replaced by ``***``):

- every secret d1sim knows for a run (bearer token, OAuth client secret and fetched tokens,
  signing secret, a URL's password), wherever it appears -- a receiver may echo it back;
- anything shaped like a credential: the value after ``Bearer``/``Basic``/``Digest``, an
  ``Authorization``/``Cookie`` header line, JSON fields such as ``access_token`` or
  ``client_secret``, form fields such as ``client_secret=``;
- the userinfo (``user:password@``) of a URL, which is removed before a URL is stored.

Secrets shorter than :data:`MIN_SECRET` characters are masked only by shape: replacing every
``ab`` in a text would hide the text, not the secret.

Example::

    >>> mask_text('{"echo": "Bearer abc.def"} via https://u:pw@hook.example/x')
    '{"echo": "Bearer ***"} via https://hook.example/x'
    >>> mask_text("token s3cr3t-value went by", ["s3cr3t-value"])
    'token *** went by'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

MASK = "***"
MIN_SECRET = 4
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
_FIELDS = r"access_token|refresh_token|id_token|client_secret|clientSecret|password|secret|token|authorization|cookie"

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s\"'<>]*@")
_SCHEME_VALUE = re.compile(r"(?i)\b(bearer|basic|digest)(\s+)(?!\*\*\*)[A-Za-z0-9._~+/=:-]+")
_HEADER_LINE = re.compile(r"(?im)^((?:proxy-)?authorization|cookie|set-cookie|x-api-key)([ \t]*:[ \t]*)\S.*$")
_JSON_FIELD = re.compile(rf'(?i)("(?:{_FIELDS})"\s*:\s*)"(?:[^"\\]|\\.)*"')
_FORM_FIELD = re.compile(rf"(?i)\b({_FIELDS})=[^&\s\"']+")

T = TypeVar("T")


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@`` (every URL in the text, if it is a text)."""
    return _USERINFO.sub(r"\1", url)


def url_password(url: str) -> str | None:
    """The password (or lone user name, often a token) in a URL's userinfo, if any."""
    try:
        parts = urlsplit(url)
        return parts.password or parts.username
    except ValueError:
        return None


def mask_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with known ``secrets`` and credential-shaped parts replaced by ``***``."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = strip_userinfo(text)
    text = _HEADER_LINE.sub(rf"\1\2{MASK}", text)
    text = _SCHEME_VALUE.sub(rf"\1\2{MASK}", text)
    text = _JSON_FIELD.sub(rf'\1"{MASK}"', text)
    return _FORM_FIELD.sub(rf"\1={MASK}", text)


def mask_bytes(data: bytes, secrets: Iterable[str | None] = ()) -> bytes:
    """:func:`mask_text` over bytes (kept as they are where nothing needed masking)."""
    if not data:
        return data
    text = data.decode("utf-8", "surrogateescape")
    masked = mask_text(text, secrets)
    return data if masked == text else masked.encode("utf-8", "surrogateescape")


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with Authorization, Cookie and the like replaced by ``***``."""
    return {k: MASK if k.lower() in SECRET_HEADERS else v for k, v in headers.items()}


def mask_value(value: T, secrets: Iterable[str | None] = ()) -> T:
    """Every string inside a JSON-like value masked (dicts, lists and tuples are copied)."""
    known = tuple(secrets)
    if isinstance(value, str):
        return mask_text(value, known)  # type: ignore[return-value]
    if isinstance(value, Mapping):
        return {k: mask_value(v, known) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list | tuple):
        return type(value)(mask_value(v, known) for v in value)  # type: ignore[return-value]
    return value


def mask_attempt(attempt: T, secrets: Iterable[str | None] = ()) -> T:
    """An outbox ``Attempt`` with its response excerpt and error masked."""
    known = tuple(secrets)
    response, error = attempt.response, attempt.error  # type: ignore[attr-defined]
    masked_response = mask_bytes(response, known)
    masked_error = mask_text(error, known) if error else error
    if masked_response is response and masked_error == error:
        return attempt  # nothing to mask: no copy (the sender's hot path)
    return replace(attempt, response=masked_response, error=masked_error)  # type: ignore[type-var]


def sender_secrets(config: Any) -> tuple[str, ...]:
    """What a sender configuration knows that must never be shown: tokens, secrets, passwords."""
    auth_secrets = getattr(config.auth, "secrets", None)
    known = tuple(auth_secrets()) if callable(auth_secrets) else ()
    return (*known, config.sign_secret or "", url_password(config.url) or "")
