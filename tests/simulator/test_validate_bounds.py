"""``d1sim validate`` reads within a memory bound and never waits on what is not a file."""

from __future__ import annotations

import io
import os
from pathlib import Path

import orjson
import pytest

from d1sim.simulator.cli import dispatch as cli
from d1sim.simulator.validate.reader import Source, read_line_range, read_source

SEED = Path(__file__).parents[1] / "data" / "seed" / "data-prepared.json"
LIMIT = 1000


def good_line() -> bytes:
    return orjson.dumps(orjson.loads(SEED.read_bytes())) + b"\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main(["validate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.timeout(30)
def test_a_fifo_is_refused_before_anything_is_read(capsys, tmp_path: Path) -> None:
    fifo = tmp_path / "capture.jsonl"
    os.mkfifo(fifo)
    code, out, err = run(capsys, fifo)
    assert (code, out) == (2, "")
    assert f"{fifo}: not a regular file (a FIFO, socket or device)" in err


def test_a_device_is_refused(capsys) -> None:
    code, out, err = run(capsys, "/dev/zero")
    assert (code, out) == (2, "") and "/dev/zero: not a regular file" in err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_line_over_the_limit_is_reported_and_the_rest_checked(capsys, tmp_path, jobs) -> None:
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(good_line() + b'{"a": "' + b"x" * 5000 + b'"}\n' + good_line())
    code, _, err = run(capsys, "--jobs", jobs, "--max-document-size", LIMIT, capture)
    assert code == 2
    assert f"{capture}:2:1: not JSON: a line of 5,010 bytes is over the size limit" in err
    assert err.splitlines()[-1].startswith("2 notifications, 2 operations: 0 errors")
    code, _, err = run(capsys, "--jobs", jobs, "--max-document-size", 6000, capture)
    assert "over the size limit" not in err


def test_a_whole_file_document_over_the_limit_is_reported(capsys, tmp_path: Path) -> None:
    document = tmp_path / "one.json"
    document.write_bytes(b" " * 2 * LIMIT + SEED.read_bytes())
    code, _, err = run(capsys, "--max-document-size", LIMIT, document)
    assert code == 2 and "a document of more than 1,000 bytes is over the size limit" in err


def test_at_most_the_limit_of_a_long_line_is_held() -> None:
    class Counting(io.BytesIO):
        largest = 0

        def readline(self, size: int | None = -1) -> bytes:
            line = super().readline(size)
            Counting.largest = max(Counting.largest, len(line))
            return line

    stream = Counting(b"x" * 1_000_000 + b"\n" + good_line())
    entries = list(read_source(Source("<stdin>", None, "sniff"), stream, limit=LIMIT))
    assert [type(e).__name__ for e in entries] == ["NotJson", "tuple"]
    assert Counting.largest <= 1 << 16  # the skipped line went by in bounded blocks


def test_a_worker_range_inside_one_long_line_holds_no_line(tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(b"x" * 100_000 + b"\n" + good_line())
    assert read_line_range(capture, 10_000, 20_000, LIMIT) == []
    [line] = read_line_range(capture, 20_000, None, LIMIT)
    assert line == good_line()


def test_stdin_is_still_read(capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(good_line() * 3)))
    code, _, err = run(capsys, "-")
    assert code == 0 and err.startswith("3 notifications")

