"""Mask credentials in everything d1sim stores or shows: one place for the rule.

What is masked (replaced by ``***``):

- every secret d1sim knows for a run (bearer token, OAuth client secret and fetched tokens,
  signing secret, a URL's password), wherever it appears -- a receiver may echo it back;
- anything shaped like a credential: the value after ``Bearer``/``Basic``/``Digest``, an
  ``Authorization``/``Cookie`` header line or stored request header (the latter keeps its
  scheme: ``Bearer ***``), JSON fields such as ``access_token`` or ``client_secret``, form
  fields such as ``client_secret=``;
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
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

MASK = "***"
MIN_SECRET = 4
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
_SCHEMES = frozenset({"bearer", "basic", "digest"})
_FIELDS = r"access_token|refresh_token|id_token|client_secret|clientSecret|password|secret|token|authorization|cookie"

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s\"'<>]*@")
_SCHEME_VALUE = re.compile(r"(?i)\b(bearer|basic|digest)(\s+)(?!\*\*\*)[A-Za-z0-9._~+/=:-]+")
_HEADER_LINE = re.compile(r"(?im)^((?:proxy-)?authorization|cookie|set-cookie|x-api-key)([ \t]*:[ \t]*)\S.*$")
_JSON_FIELD = re.compile(rf'(?i)("(?:{_FIELDS})"\s*:\s*)"(?:[^"\\]|\\.)*"')
_FORM_FIELD = re.compile(rf"(?i)\b({_FIELDS})=[^&\s\"']+")
# A word every pattern above needs (each of _FIELDS holds one): without it nothing is shaped.
# Searched in the casefolded text, several times faster than an IGNORECASE search.
_MAYBE_SHAPED = re.compile(r"@|bearer|basic|digest|authorization|cookie|x-api-key|token|secret|password")

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
    return _mask(text, _longest_first(secrets))


def _longest_first(secrets: Iterable[str | None]) -> tuple[str, ...]:
    """The secrets worth replacing, longest first (a secret may contain a shorter one)."""
    return _ordered(tuple(secrets))


@lru_cache(maxsize=64)
def _ordered(secrets: tuple[str | None, ...]) -> tuple[str, ...]:
    return tuple(sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True))


# A sender masks the same few headers on every attempt (Content-Type, the token, the user
# agent): remembered, each costs a dictionary lookup instead of a regular expression.
@lru_cache(maxsize=4096)
def _masked_header(name: str, value: str, secrets: tuple[str, ...]) -> tuple[str, str]:
    return name, _credential(value) if name.lower() in SECRET_HEADERS else _mask(value, secrets)


def _mask(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    if not _MAYBE_SHAPED.search(text.casefold()):  # the common case: most headers, most answers
        return text
    return _mask_shapes(text)


def _mask_shapes(text: str) -> str:
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


def mask_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], secrets: Iterable[str | None] = ()
) -> tuple[tuple[str, str], ...]:
    """``headers`` as (name, value) pairs fit to store or show.

    Authorization, Cookie and the like keep only their scheme (``Bearer ***``, else ``***``);
    every other value has known ``secrets`` and credential shapes masked. A signature header
    stays as it is: it is a MAC of one body, not a key, and a receiver's author needs it.
    """
    known = _longest_first(secrets)
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return tuple([_masked_header(name, value, known) for name, value in pairs])


def _credential(value: str) -> str:
    scheme, _, rest = value.strip().partition(" ")
    return f"{scheme} {MASK}" if rest and scheme.lower() in _SCHEMES else MASK


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
    """An outbox ``Attempt`` with its response excerpt, error and request headers masked."""
    known = tuple(secrets)
    response, error = attempt.response, attempt.error  # type: ignore[attr-defined]
    headers = getattr(attempt, "request_headers", None)
    masked_response = mask_bytes(response, known)
    masked_error = mask_text(error, known) if error else error
    masked_headers = headers if headers is None else mask_headers(headers, known)
    if masked_response is response and masked_error == error and masked_headers == headers:
        return attempt  # nothing to mask: no copy (the sender's hot path)
    return replace(  # type: ignore[type-var]
        attempt, response=masked_response, error=masked_error, request_headers=masked_headers)


def sender_secrets(config: Any) -> tuple[str, ...]:
    """What a sender configuration knows that must never be shown: tokens, secrets, passwords."""
    auth_secrets = getattr(config.auth, "secrets", None)
    known = tuple(auth_secrets()) if callable(auth_secrets) else ()
    return (*known, config.sign_secret or "", url_password(config.url) or "")
