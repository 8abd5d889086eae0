"""Load the data documents shipped in the ``schemas`` package (JSON Schemas, the lifecycle model)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

NOTIFICATION_SCHEMA_ID = "https://d1sim.dev/schemas/notification.schema.json"
STRICT_NOTIFICATION_SCHEMA_ID = "https://d1sim.dev/schemas/notification.strict.schema.json"
LIFECYCLE_SCHEMA_ID = "https://d1sim.dev/schemas/lifecycle.schema.json"


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
