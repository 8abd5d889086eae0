"""Check a scenario document against ``schemas/scenario.schema.json`` and explain the first error.

jsonschema's messages are written for JSON Schema authors; a scenario author wants "unknown key
'stpes' (did you mean 'steps'?)" on the right line. The explanation is driven by the schema
itself (property names, titles, descriptions), so it follows the schema when the schema changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from d1sim.contracts.notification.documents import load_document
from d1sim.contracts.scenario.source import Path, SourceDocument, did_you_mean

SCENARIO_SCHEMA = "scenario.schema.json"

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One explained schema error; ``weak`` ones (missing keys) give way to any other."""

    path: Path
    message: str
    key: bool = False
    weak: bool = False


@cache
def scenario_validator() -> jsonschema.Draft202012Validator:
    """The compiled validator for scenario documents."""
    return jsonschema.Draft202012Validator(load_document(SCENARIO_SCHEMA))


def check_against_schema(doc: SourceDocument) -> None:
    """Raise the most useful schema error of ``doc`` as a located :class:`ScenarioError`."""
    validator = scenario_validator()
    if validator.is_valid(doc.data):
        return
    findings = [f for error in validator.iter_errors(doc.data) for f in explain(error)]
    best = min(findings, key=lambda f: (f.weak, doc.position(f.path, key=f.key)))
    raise doc.error(best.path, best.message, key=best.key)


def explain(error: ValidationError, title: str | None = None) -> Iterator[Finding]:
    """Turn one jsonschema error into findings a scenario author can act on."""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    title = schema.get("title", title)
    path, kind = list(error.absolute_path), error.validator
    if kind == "additionalProperties":
        yield from _unknown_keys(error, schema, path)
    elif kind == "required":
        missing = [n for n in error.validator_value if n not in error.instance]
        yield Finding(path, f"missing required key '{missing[0]}'", weak=True)
    elif kind in ("anyOf", "oneOf"):
        yield from _alternatives(error, schema, title, path)
    elif kind == "type":
        got = _TYPE_WORDS[_kind_of(error.instance)]
        yield Finding(
            path, f"expected {_wanted(error.validator_value)}, got {got} {error.instance!r}"
        )
    elif kind == "pattern" and title:
        yield Finding(path, _titled(error.instance, title, schema))
    else:
        yield Finding(path, error.message)


def _unknown_keys(
    error: ValidationError, schema: Mapping[str, Any], path: list[Any]
) -> Iterator[Finding]:
    allowed = list(schema.get("properties", {}))
    for name in error.instance:
        if name not in allowed:
            yield Finding(
                [*path, name],
                f"unknown key '{name}'{did_you_mean(name, allowed)}; "
                f"known keys: {', '.join(allowed)}",
                key=True,
            )


def _alternatives(
    error: ValidationError, schema: Mapping[str, Any], title: str | None, path: list[Any]
) -> Iterator[Finding]:
    branches = schema[error.validator]
    if all(set(b) == {"required"} for b in branches):
        names = " or ".join(b["required"][0] for b in branches)
        yield Finding(path, f"give exactly one of {names}")
        return
    matching = [i for i, b in enumerate(branches) if _accepts_type(_resolve(b), error.instance)]
    # Inside a mapping or list the branch's own error says more than "matches no alternative".
    if len(matching) == 1 and isinstance(error.instance, dict | list):
        inner = [e for e in error.context or () if e.relative_schema_path[0] == matching[0]]
        for sub in inner:
            yield from explain(sub, title)
        if inner:
            return
    if title:
        yield Finding(path, _titled(error.instance, title, schema))
    else:
        yield Finding(path, best_match(error.context or [error]).message)


def _resolve(branch: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = branch.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return _resolve(load_document(SCENARIO_SCHEMA)["$defs"][ref.removeprefix("#/$defs/")])
    return branch


def _accepts_type(branch: Mapping[str, Any], instance: Any) -> bool:
    wanted = branch.get("type")
    if wanted is None:
        return False
    kinds = wanted if isinstance(wanted, list) else [wanted]
    return _kind_of(instance) in kinds or (_kind_of(instance) == "integer" and "number" in kinds)


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    for kind, types in (
        ("object", dict),
        ("array", list),
        ("string", str),
        ("integer", int),
        ("number", float),
    ):
        if isinstance(value, types):
            return kind
    return "null"


def _wanted(types: str | list[str]) -> str:
    return " or ".join(
        _TYPE_WORDS.get(t, t) for t in ([types] if isinstance(types, str) else types)
    )


def _titled(value: Any, title: str, schema: Mapping[str, Any]) -> str:
    hint = schema.get("description")
    return f"{value!r} is not a valid {title}" + (f": {hint}" if hint else "")
