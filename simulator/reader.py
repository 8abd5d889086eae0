"""Read notifications from files, directories and stdin, one parsed document at a time.

JSON Lines inputs (``*.jsonl``, ``*.ndjson``) are streamed line by line and parsed with orjson,
so memory does not grow with the file. A ``*.json`` file holds one document (it may be
pretty-printed) and is read whole. Any other file, and ``-`` (stdin), is sniffed: when the first
non-blank line is a JSON document by itself the input is JSON Lines, otherwise one document.

Example::

    >>> from d1sim.simulator.validate.reader import expand_inputs, read_source
    >>> [source.name for source in expand_inputs(["tests/data/seed/data-prepared.json"])]
    ['tests/data/seed/data-prepared.json']
"""

from __future__ import annotations

import bisect
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from d1sim.simulator.errors import InputError

Mode = Literal["lines", "document", "sniff"]

STDIN = "-"
STDIN_NAME = "<stdin>"
LINE_SUFFIXES = (".jsonl", ".ndjson")
DIRECTORY_SUFFIXES = (".json", ".jsonl")
BOM = b"\xef\xbb\xbf"
RANGE_BUFFER = 1 << 16  # larger reads than the default: a range is read whole, line by line
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class Source:
    """One input: a file (``path``) or stdin (``path`` None), shown to the user as ``name``."""

    name: str
    path: Path | None
    mode: Mode


@dataclass(frozen=True, slots=True)
class NotJson:
    """Text that is not JSON (or not readable), located by line and column (both 1-based)."""

    name: str
    line: int
    column: int
    reason: str

    def __str__(self) -> str:
        return f"{self.name}:{self.line}:{self.column}: not JSON: {self.reason}"


# One parsed document: (line where it starts, the document, the raw bytes of a whole-file
# document or None for a JSON Lines line). Tuples, not objects: there is one per input line.
Entry = tuple[int, Any, bytes | None]


def expand_inputs(arguments: Sequence[str]) -> list[Source]:
    """Turn command-line arguments into sources; directories become their JSON files, sorted.

    Raises:
        InputError: an argument names nothing (checked before anything is read).
    """
    sources: list[Source] = []
    for argument in arguments:
        if argument == STDIN:
            sources.append(Source(STDIN_NAME, None, "sniff"))
            continue
        path = Path(argument)
        if path.is_dir():
            sources += [_file_source(str(p), p) for p in _json_files(path)]
        elif path.exists():
            sources.append(_file_source(argument, path))
        else:
            raise InputError(f"{argument}: no such file or directory")
    return sources


def _json_files(root: Path) -> list[Path]:
    found = []
    for folder, _, files in os.walk(root):
        found += [Path(folder, f) for f in files if f.endswith(DIRECTORY_SUFFIXES)]
    return sorted(found)


def _file_source(name: str, path: Path) -> Source:
    if path.suffix in LINE_SUFFIXES:
        return Source(name, path, "lines")
    return Source(name, path, "document" if path.suffix == ".json" else "sniff")


def read_source(source: Source, stdin: IO[bytes] | None = None) -> Iterator[Entry | NotJson]:
    """Yield the documents of ``source`` in order, and a :class:`NotJson` for each bad one.

    Raises:
        InputError: the file cannot be opened or read (names the file and the reason).
    """
    if source.path is None:
        yield from _read_stream(source, stdin or sys.stdin.buffer)
        return
    try:
        with source.path.open("rb") as stream:
            yield from _read_stream(source, stream)
    except OSError as exc:
        raise InputError(f"{source.name}: cannot read: {exc.strerror or exc}") from None


def _read_stream(source: Source, stream: IO[bytes]) -> Iterator[Entry | NotJson]:
    if source.mode == "lines":
        yield from read_lines(source.name, stream)
    elif source.mode == "document":
        yield parse_document(source.name, stream.read())
    else:
        yield from _sniff(source.name, stream)


def read_lines(name: str, lines: Iterable[bytes], first: int = 1) -> Iterator[Entry | NotJson]:
    """Parse JSON Lines; blank lines are skipped, a bad line becomes a :class:`NotJson`."""
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    for number, line in enumerate(lines, first):
        try:
            yield number, loads(line), None
        except decode_error as exc:
            entry = rejected_line(name, number, line, exc)
            if entry is not None:
                yield entry


def rejected_line(
    name: str, number: int, line: bytes, exc: orjson.JSONDecodeError, first: bool | None = None
) -> Entry | NotJson | None:
    """What a line orjson rejected is: None when blank, else a :class:`NotJson`.

    The exception: the input's first line (``first``, by default line 1) may start with a byte
    order mark, then the document after it counts.
    """
    if (number == 1 if first is None else first) and line.startswith(BOM):
        return next(read_lines(name, [line[len(BOM) :]]), None)
    if line.strip():
        return _not_json(name, number, line, exc)
    return None


def read_line_range(path: Path, start: int, end: int | None) -> list[bytes]:
    """The lines of a file (with their newlines) that start in bytes ``[start, end)``.

    ``end`` None reads to the end of the file. Workers read their own ranges, so the lines of a
    large input never pass through a pipe.

    Raises:
        OSError: the file cannot be opened or read.
    """
    with path.open("rb", buffering=RANGE_BUFFER) as stream:
        if start:
            stream.seek(start - 1)
            stream.readline()  # the line that starts before ``start`` belongs to the range before
        if end is None:
            return stream.readlines()
        left = end - stream.tell()
        if left <= 1:
            return [stream.readline()] if left == 1 else []
        # readlines stops after the line that takes it past the hint: the last one starting
        # before ``end``. A hint of 0 would mean "no limit", hence the case above.
        return stream.readlines(left - 1)


def _sniff(name: str, stream: IO[bytes]) -> Iterator[Entry | NotJson]:
    head: list[bytes] = []
    for line in stream:
        head.append(line)
        if line.strip():
            break
    if not head:
        return
    head[0] = head[0].removeprefix(BOM)
    try:
        first = orjson.loads(head[-1])
    except orjson.JSONDecodeError:
        # Not a document on its own line: the whole input is one (pretty-printed) document.
        yield parse_document(name, b"".join(head) + stream.read())
        return
    yield len(head), first, None
    yield from read_lines(name, stream, len(head) + 1)


def parse_document(name: str, raw: bytes) -> Entry | NotJson:
    """Parse one whole-file document; the entry's line is where the document starts."""
    raw = raw.removeprefix(BOM)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _not_json(name, 1, raw, exc)
    stripped = raw.lstrip()
    return raw.count(b"\n", 0, len(raw) - len(stripped)) + 1, document, raw


def _not_json(name: str, first_line: int, raw: bytes, exc: orjson.JSONDecodeError) -> NotJson:
    line, column, reason = exc.lineno, exc.colno, exc.msg
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        # orjson checks the encoding first and blames offset 0; find the first bad byte instead.
        before = raw[: bad.start].decode("utf-8")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        reason = f"not UTF-8 (byte 0x{raw[bad.start]:02x})"
    if not raw.strip():
        reason = "empty document"
    return NotJson(name, first_line + line - 1, column, reason)


class Locator:
    """Find the line of a JSON pointer inside a whole-file document (only when reporting)."""

    def __init__(self, raw: bytes) -> None:
        self.text = raw.decode("utf-8")
        self._children: dict[int, dict[str, int]] = {}
        self._newlines: list[int] | None = None

    def line_of(self, pointer: str) -> int:
        """The line of the deepest value on ``pointer`` that exists (the document's at worst)."""
        position = start = _skip_space(self.text, 0)
        try:
            for token in pointer.split("/")[1:]:
                key = token.replace("~1", "/").replace("~0", "~")
                child = self._child_offsets(position).get(key)
                if child is None:
                    break
                position = child
        except (ValueError, IndexError, RecursionError):
            # orjson accepted the text; if the stdlib scanner disagrees, the start will do.
            position = start
        if self._newlines is None:
            self._newlines = [match.start() for match in re.finditer("\n", self.text)]
        return bisect.bisect_left(self._newlines, position) + 1

    def _child_offsets(self, position: int) -> dict[str, int]:
        children = self._children.get(position)
        if children is None:
            children = self._children[position] = _scan_children(self.text, position)
        return children


def _skip_space(text: str, position: int) -> int:
    return _SPACE.match(text, position).end()  # type: ignore[union-attr]


def _scan_children(text: str, position: int) -> dict[str, int]:
    """Offsets of the members (by key) or items (by index) of the container at ``position``."""
    opener = text[position : position + 1]
    if opener not in ("{", "["):
        return {}
    children: dict[str, int] = {}
    position = _skip_space(text, position + 1)
    while text[position] not in "}]":
        key = str(len(children))
        if opener == "{":
            key, position = scanstring(text, position + 1)
            position = _skip_space(text, _skip_space(text, position) + 1)
        children.setdefault(key, position)
        _, end = _DECODER.raw_decode(text, position)
        position = _skip_space(text, end)
        if text[position] == ",":
            position = _skip_space(text, position + 1)
    return children
