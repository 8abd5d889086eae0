"""The input reader: JSON Lines streaming, whole documents, sniffing, and pointer lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from simulator.errors import InputError
from simulator.reader import Locator, NotJson, Source, expand_inputs, read_lines, read_source

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
