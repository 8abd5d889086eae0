"""Scenario text with positions: YAML nodes kept beside the data so every error names its line.

A JSON Schema error gives a path inside the data (``steps/2/after``); the YAML node tree maps that
path back to the line and column where the value (or the misspelt key) was written.

Example::

    >>> from d1sim.contracts.scenario.source import read_source
    >>> doc = read_source("name: x\\nsteps:\\n  - status: DATA_PREPARED\\n", "demo.yaml")
    >>> doc.position(("steps", 0, "status"))
    (3, 13)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import yaml

from d1sim.contracts.payloads.times import format_time

PathPart = str | int
Path = Sequence[PathPart]


class ScenarioError(ValueError):
    """A scenario that cannot be used: where (source, line, column, field path) and why."""

    def __init__(
        self, message: str, *, source: str, line: int, column: int, path: str = ""
    ) -> None:
        where = f" ({path})" if path else ""
        super().__init__(f"{source}:{line}:{column}: {message}{where}")
        self.message, self.source, self.line, self.column, self.path = (
            message,
            source,
            line,
            column,
            path,
        )


def format_path(path: Path) -> str:
    """``("steps", 2, "after")`` -> ``steps[2].after``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'steps'?)`` when a choice is close to ``word``, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class SourceDocument:
    """The data of a YAML document and its node tree."""

    def __init__(self, data: Any, root: yaml.Node | None, source: str) -> None:
        self.data, self.root, self.source = data, root, source

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at ``path`` (of its key with ``key``)."""
        node, key_node = self.root, None
        for part in path:
            found = _child(node, part)
            if found is None:
                break
            key_node, node = found
        target = key_node if key and key_node is not None else node
        if target is None:
            return 1, 1
        return target.start_mark.line + 1, target.start_mark.column + 1

    def error(self, path: Path, message: str, *, key: bool = False) -> ScenarioError:
        """A :class:`ScenarioError` pointing at ``path``."""
        line, column = self.position(path, key=key)
        return ScenarioError(
            message, source=self.source, line=line, column=column, path=format_path(path)
        )


def _child(node: yaml.Node | None, part: PathPart) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == str(part):
                return key_node, value_node
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return None, node.value[part]
    return None


def read_source(text: str, source: str) -> SourceDocument:
    """Parse one YAML (or JSON) document, keeping its nodes.

    Raises:
        ScenarioError: the text is not YAML, holds several documents, or repeats a key.
    """
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML: {exc}", source=source, line=1, column=1) from None
    try:
        root = loader.get_single_node()
        _refuse_duplicate_keys(root, source)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ScenarioError(
            f"not valid YAML: {exc.problem or exc.context}", source=source, line=line, column=column
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML: {exc}", source=source, line=1, column=1) from None
    finally:
        loader.dispose()
    return SourceDocument(jsonable(data), root, source)


def _refuse_duplicate_keys(node: yaml.Node | None, source: str) -> None:
    # PyYAML keeps the last of two equal keys silently; in a scenario that hides a mistake.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                mark = key_node.start_mark
                raise ScenarioError(
                    f"key '{key_node.value}' is given twice",
                    source=source,
                    line=mark.line + 1,
                    column=mark.column + 1,
                )
            seen.add(key_node.value)
            _refuse_duplicate_keys(value_node, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, source)


def jsonable(value: Any) -> Any:
    """YAML's extra scalar types as JSON text: dates become ISO 8601 strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return format_time(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
