"""Limits on a scenario's size, checked before any work that grows with what it asks for.

A 300-byte file can ask for 10^8 shipment updates, nest lists 50,000 deep, or multiply one list
through YAML aliases into billions of items. Each limit is checked as early as it can be: the
file's size before it is read, nesting and node count on the YAML event stream before any tree
is built, and the notifications a run would send before it is expanded. docs/scenarios.md lists
the limits.

Example::

    >>> from d1sim.contracts.scenario.limits import ScenarioLimits, scan_yaml
    >>> scan_yaml("a: [[[1]]]", "x.yaml", ScenarioLimits(max_depth=3))
    Traceback (most recent call last):
    ...
    d1sim.contracts.scenario.limits.ScenarioTooLarge: x.yaml:1:6: nesting deeper than 3 levels
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any

import yaml

from d1sim.contracts.notification.documents import NotARegularFile, read_regular_file
from d1sim.contracts.scenario.source import Path, ScenarioError


class ScenarioTooLarge(ScenarioError):
    """A scenario over one of the :class:`ScenarioLimits` (a server answers 422, not 400)."""


@dataclass(frozen=True, slots=True)
class ScenarioLimits:
    """How big a scenario may be; the defaults fit every realistic test campaign."""

    max_bytes: int = 1024 * 1024
    max_depth: int = 32
    max_nodes: int = 100_000  # YAML values, each alias counted as the whole value it repeats
    max_per_card: int = 100_000  # notifications of one card (its steps and their updates)
    max_notifications: int = 1_000_000  # over every card of a run


DEFAULT_LIMITS = ScenarioLimits()


def check_size(size: int, source: str, limits: ScenarioLimits) -> None:
    """Refuse a document of ``size`` bytes when it is over the limit."""
    if size > limits.max_bytes:
        raise ScenarioTooLarge(
            f"the scenario is {size:,} bytes; a scenario is at most {limits.max_bytes:,} bytes",
            source=source, line=1, column=1,
        )


def read_limited(path: str | FilePath, limits: ScenarioLimits) -> str:
    """The text of a regular file of at most ``limits.max_bytes`` bytes of UTF-8.

    Raises:
        ScenarioError: a FIFO or device, a file over the limit, or bytes that are not UTF-8.
        OSError: the file cannot be opened.
    """
    source = str(path)
    try:
        raw = read_regular_file(path, limits.max_bytes + 1)
    except NotARegularFile:
        raise ScenarioError("not a regular file (a FIFO or a device?)", source=source, line=1, column=1) from None
    check_size(len(raw), source, limits)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(f"not UTF-8 text (byte {raw[exc.start]:#04x})",
                            source=source, line=line, column=1) from None


def scan_yaml(text: str, source: str, limits: ScenarioLimits) -> None:
    """Refuse deep nesting and alias bombs from the event stream, before a tree is built.

    Raises:
        ScenarioError: at the line where the nesting or the node count goes over its limit.
    """
    check_size(len(text.encode("utf-8", "surrogatepass")), source, limits)
    depth, nodes = 0, 0
    sizes: dict[str, int] = {}  # anchor -> how many nodes its value holds
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, node count when it opened)
    for event in _events(text, source):
        if isinstance(event, yaml.AliasEvent):
            nodes += sizes.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            depth, nodes = depth + 1, nodes + 1
            open_nodes.append((event.anchor, nodes))
            if depth > limits.max_depth:
                raise _at(event, source, f"nesting deeper than {limits.max_depth} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, start = open_nodes.pop()
            if anchor:
                sizes[anchor] = nodes - start + 1
        if nodes > limits.max_nodes:
            raise _at(event, source, f"more than {limits.max_nodes:,} values (aliases counted "
                      "as the values they repeat)")


def _events(text: str, source: str) -> Iterator[yaml.Event]:
    try:
        yield from yaml.parse(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ScenarioError(f"not valid YAML: {exc.problem or exc.context}",
                            source=source, line=line, column=column) from None
    except yaml.reader.ReaderError as exc:
        line, column = _line_of(text, exc.position)
        raise ScenarioError(f"not valid YAML: character {exc.character:#06x} is not allowed "
                            "(control characters must be escaped in a quoted string)",
                            source=source, line=line, column=column) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML: {exc}", source=source, line=1, column=1) from None


def _line_of(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def _at(event: yaml.Event, source: str, message: str) -> ScenarioError:
    mark = event.start_mark
    return ScenarioTooLarge(message, source=source, line=mark.line + 1, column=mark.column + 1)


def volume_problems(data: Mapping[str, Any], limits: ScenarioLimits) -> Iterator[tuple[Path, str]]:
    """How many notifications schema-valid ``data`` would send, against the limits."""
    steps = data["steps"]
    per_card = sum(1 + step.get("updates", 0) for step in steps)
    if per_card > limits.max_per_card:
        worst = max(range(len(steps)), key=lambda i: steps[i].get("updates", 0))
        yield (("steps", worst, "updates"), f"each card would send {per_card:,} notifications; "
               f"a scenario allows at most {limits.max_per_card:,} per card")
        return
    count = _card_count(data.get("cards"))
    if per_card * count > limits.max_notifications:
        yield (("cards",), f"{count:,} cards x {per_card:,} notifications = "
               f"{per_card * count:,}; a run allows at most {limits.max_notifications:,}")


def _card_count(cards: Any) -> int:
    if isinstance(cards, list):
        return len(cards)
    if isinstance(cards, dict):
        return len(cards["ids"]) if "ids" in cards else int(cards.get("count", 1))
    return 1
