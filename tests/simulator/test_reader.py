"""The input reader: JSON Lines streaming, byte ranges, whole documents, sniffing, pointer lines."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from d1sim.simulator.errors import InputError
from d1sim.simulator.validate.reader import (
    BOM,
    Locator,
    NotJson,
    Source,
    expand_inputs,
    read_line_range,
    read_lines,
    read_source,
    rejected_line,
)

PRETTY = b"""{
  "operations": [
    {"a": 1},
    {
      "b/c": [10,
              20],
      "d~e": {}
    }
  ]
}
"""


@pytest.mark.parametrize(
    ("pointer", "line"),
    [
        ("", 1),
        ("/operations", 2),
        ("/operations/0", 3),
        ("/operations/0/a", 3),
        ("/operations/1", 4),
        ("/operations/1/b~1c/1", 6),
        ("/operations/1/d~0e", 7),
        ("/operations/1/missing", 4),
        ("/operations/9", 2),
        ("/operations/0/a/deeper", 3),
    ],
)
def test_locator_finds_the_line_of_the_deepest_existing_value(pointer: str, line: int) -> None:
    assert Locator(PRETTY).line_of(pointer) == line


def test_json_lines_skip_blank_lines_and_locate_bad_ones() -> None:
    entries = list(read_lines("x.jsonl", [b'{"a": 1}\n', b"\n", b"   \n", b'{"a": }\n', b"[]"]))
    assert entries[0] == (1, {"a": 1}, None)
    assert entries[1] == NotJson("x.jsonl", 4, 7, "unexpected character, expected a JSON value")
    assert entries[2] == (5, [], None)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'\n\n{"a": 1}\n{"a": 2}\n', [(3, {"a": 1}), (4, {"a": 2})]),
        (b'\n{\n  "a": 1\n}\n', [(2, {"a": 1})]),
        (b"", []),
    ],
)
def test_stdin_is_sniffed_as_lines_or_one_document(data: bytes, expected: list) -> None:
    source = Source("<stdin>", None, "sniff")
    entries = list(read_source(source, io.BytesIO(data)))
    assert [(line, doc) for line, doc, _ in entries] == expected


def test_whole_document_error_carries_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b'{\n  "a": [1,\n   2 3]\n}')
    (entry,) = read_source(Source(str(path), path, "document"))
    assert str(entry) == f"{path}:3:6: not JSON: unexpected character, expected ',' or ']'"


def test_empty_document_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_bytes(b"\n")
    (entry,) = read_source(Source(str(path), path, "document"))
    assert isinstance(entry, NotJson) and entry.reason == "empty document"


def test_inputs_expand_directories_sorted_and_choose_modes(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a/z.json", "a/notes.txt", "c.ndjson"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    sources = expand_inputs([str(tmp_path), str(tmp_path / "c.ndjson"), "-"])
    assert [(Path(s.name).name, s.mode) for s in sources] == [
        ("z.json", "document"),
        ("b.jsonl", "lines"),
        ("c.ndjson", "lines"),
        ("<stdin>", "sniff"),
    ]


def test_missing_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing.json: no such file or directory"):
        expand_inputs([str(tmp_path / "nothing.json")])


def test_locator_falls_back_to_the_document_start_on_deep_nesting() -> None:
    deep = b"\n" + b"[" * 5000 + b"]" * 5000
    assert Locator(deep).line_of("/0" * 4000) == 2


LINES = [b'{"a": 1}\n', b"\n", b"\n", b"  \r\n", b'{"b": [1, 2]}\n', b"x\n", b'"\xe8"\n', b"last"]


@pytest.mark.parametrize("size", range(1, 25))
def test_byte_ranges_split_a_file_into_its_lines_once_each(tmp_path: Path, size: int) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"".join(LINES))
    starts = range(0, path.stat().st_size, size)
    ends = [*starts[1:], None]
    ranges = [read_line_range(path, start, end) for start, end in zip(starts, ends, strict=True)]
    assert [line for lines in ranges for line in lines] == LINES


@given(
    lines=st.lists(st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=12),
    tail=st.binary(max_size=4).map(lambda b: b.replace(b"\n", b"")),
    cuts=st.sets(st.integers(1, 80), max_size=10),
)
def test_any_cuts_give_the_lines_a_stream_gives(tmp_path_factory, lines, tail, cuts) -> None:
    path = tmp_path_factory.mktemp("ranges") / "x.jsonl"
    path.write_bytes(b"".join(lines) + tail)
    size = path.stat().st_size
    starts = [0, *sorted(c for c in cuts if c < size)]
    ends = [*starts[1:], None]
    got = [line for s, e in zip(starts, ends, strict=True) for line in read_line_range(path, s, e)]
    with path.open("rb") as stream:
        assert got == list(stream)


def test_a_range_reads_its_last_line_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"aaaa\nbbbbbbbb\ncc\n")
    assert read_line_range(path, 0, 6) == [b"aaaa\n", b"bbbbbbbb\n"]  # b starts before byte 6
    assert read_line_range(path, 6, 14) == []  # no line starts in [6, 14)
    assert read_line_range(path, 14, None) == [b"cc\n"]
    assert read_line_range(path, 5, 6) == [b"bbbbbbbb\n"]  # a one-byte range: the line at 5


def test_rejected_line_keeps_a_byte_order_mark_only_at_the_start() -> None:
    line = BOM + b'{"a": 1}\n'
    with pytest.raises(orjson.JSONDecodeError) as exc:
        orjson.loads(line)
    assert rejected_line("x", 1, line, exc.value) == (1, {"a": 1}, None)
    assert isinstance(rejected_line("x", 7, line, exc.value), NotJson)
    assert rejected_line("x", 1, line, exc.value, first=False) != (1, {"a": 1}, None)
    assert rejected_line("x", 9, BOM + b"\n", exc.value, first=True) is None
