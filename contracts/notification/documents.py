"""The data boundary of the core: the one module that reads files, and keeps what it built.

Everything else under ``contracts/`` is plain functions over data handed to it: the lifecycle
model, the compiled schemas, scenario text. The public defaults (``load_lifecycle()``,
``validate_notification(doc)``) get their data from here, read once per process through
:func:`shipped`, so the rest of the core holds no hidden state (``tests/contracts/test_layers.py``
fails on file, clock, randomness or thread use anywhere else).

Example::

    >>> from d1sim.contracts.notification.documents import load_document
    >>> load_document("produce-lifecycle.json")["operation"]
    'PRODUCE'
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Hashable
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any, TypeVar

NOTIFICATION_SCHEMA_ID = "https://d1sim.dev/schemas/notification.schema.json"
STRICT_NOTIFICATION_SCHEMA_ID = "https://d1sim.dev/schemas/notification.strict.schema.json"
LIFECYCLE_SCHEMA_ID = "https://d1sim.dev/schemas/lifecycle.schema.json"

T = TypeVar("T")


@cache
def load_document(name: str) -> Any:
    """Return the parsed JSON document ``name`` from the ``schemas`` package data."""
    return json.loads(resources.files("d1sim.schemas").joinpath(name).read_text(encoding="utf-8"))


@cache
def schema_documents() -> dict[str, dict[str, Any]]:
    """Return every ``*.schema.json`` shipped in ``schemas``, keyed by its ``$id``."""
    docs = {}
    for entry in resources.files("d1sim.schemas").iterdir():
        if entry.name.endswith(".schema.json"):
            doc = load_document(entry.name)
            docs[doc["$id"]] = doc
    return docs


def schema_path(name: str) -> str:
    """Return a filesystem path to a shipped document, for tools that want a file."""
    return str(resources.files("d1sim.schemas").joinpath(name))


@cache
def shipped(build: Callable[..., T], *args: Hashable) -> T:
    """``build(*args)`` over shipped data, made once per process: the core's one cache.

    For the public defaults only (the shipped lifecycle, the compiled shipped schemas); a
    caller with its own model or schemas builds its own values and passes them in.
    """
    return build(*args)


def package_version() -> str:
    """d1sim's version (read from the installed metadata), or ``0.0.0`` when not installed."""
    try:
        return metadata.version("d1sim")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class NotARegularFile(OSError):
    """A path names a FIFO, a socket or a device: reading it could block or never end."""


def read_regular_file(path: str | os.PathLike[str], most: int) -> bytes:
    """At most ``most`` bytes of a regular file; opened non-blocking so a FIFO never waits.

    Raises:
        NotARegularFile: a FIFO, socket or device.
        OSError: the file cannot be opened.
    """
    with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise NotARegularFile(str(path))
        return file.read(most)


def read_text_file(path: str | Path) -> str:
    """The UTF-8 text of a user's file (raises OSError/UnicodeDecodeError for the caller to word)."""
    return Path(path).read_text(encoding="utf-8")


def bundled_names(package: str, suffix: str) -> list[str]:
    """The stems of the ``*suffix`` files shipped in ``package`` (e.g. the scenarios), sorted."""
    return sorted(
        entry.name[: -len(suffix)]
        for entry in resources.files(package).iterdir()
        if entry.name.endswith(suffix)
    )


def read_bundled(package: str, file_name: str) -> str:
    """The UTF-8 text of a file shipped in ``package``."""
    return resources.files(package).joinpath(file_name).read_text(encoding="utf-8")
