"""``d1sim validate``: output format, exit codes, inputs (files, JSON Lines, directories, stdin).

Every test runs twice: with everything in one process, and with JSON Lines inputs cut into
tiny chunks that a worker process and this one share (see test_validate_pipeline.py).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from d1sim.simulator.cli import dispatch as cli
from d1sim.simulator.cli import validate
from d1sim.simulator.validate import pipeline as validate_pipeline

LINE = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+):(?P<pointer>(/[^:]*)?): (?P<severity>error|warning): .+$"
)
SUMMARY = re.compile(r"^\d+ notifications, \d+ operations: \d+ errors, \d+ warnings")
SEED = sorted((Path(__file__).parents[1] / "data" / "seed").glob("*.json"))


@pytest.fixture(autouse=True, params=["one process", "workers"])
def jobs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The same expectations hold whether JSON Lines inputs are checked by workers or not."""
    if request.param == "workers":
        monkeypatch.setattr(validate, "auto_jobs", lambda sources: 2)
        monkeypatch.setattr(validate_pipeline, "CHUNK_BYTES", 100)  # chunk boundaries everywhere
    return str(request.param)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, list[str], list[str]]:
    """Run ``d1sim validate`` in-process: (exit code, stdout lines, stderr lines)."""
    code = cli.main(["validate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def feed_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


@pytest.mark.parametrize("path", SEED, ids=[p.stem for p in SEED])
def test_every_seed_example_validates(capsys: pytest.CaptureFixture[str], path: Path) -> None:
    code, out, err = run(capsys, path)
    assert (code, out) == (0, [])
    operations = 3 if "bulk" in path.name else 1
    assert err == [f"1 notifications, {operations} operations: 0 errors, 0 warnings"]


def test_seed_examples_checked_per_file_validate_together(capsys, data_dir: Path) -> None:
    code, out, _ = run(capsys, "--per-file", data_dir / "seed")
    assert (code, out) == (0, [])


def test_seed_examples_share_one_operation_id_so_across_files_they_clash(capsys, data_dir) -> None:
    # The vendor's examples reuse one operationId for a shipped and a failed order.
    code, out, _ = run(capsys, data_dir / "seed")
    assert code == 1
    assert any("DATA_EXCEPTION and CARD_SHIPPED cannot both happen" in line for line in out)


def test_problem_lines_are_path_line_pointer_severity_message(capsys, data_dir: Path) -> None:
    path = data_dir / "validate" / "tree"
    code, out, err = run(capsys, path)
    assert code == 1
    assert out == [
        f"{path}/sub/more.jsonl:2:/operations/0/errorCode: error: "
        "'errorCode' only appears on a FAILED operation, not on PENDING"
    ]
    assert all(LINE.match(line) for line in out)
    assert err == ["3 notifications, 3 operations: 1 errors, 0 warnings"]


def test_pretty_printed_json_reports_the_line_of_each_pointer(capsys, data_dir: Path) -> None:
    path = data_dir / "validate" / "pointer-line.json"
    code, out, _ = run(capsys, path)
    assert code == 1
    assert [line.split(": ")[0] for line in out] == [
        f"{path}:11:/operations/0/details/dueDate",
        f"{path}:13:/operations/0/errorCode",
    ]


def test_json_format_gives_one_object_per_problem(capsys, data_dir: Path) -> None:
    code, out, _ = run(capsys, "--format", "json", data_dir / "validate" / "pointer-line.json")
    records = [json.loads(line) for line in out]
    assert code == 1 and len(records) == 2
    assert set(records[0]) == {"path", "line", "pointer", "severity", "code", "message"}
    assert records[1]["line"] == 13 and records[1]["code"] == "lifecycle.error"


def test_quiet_prints_the_summary_only(capsys, data_dir: Path) -> None:
    code, out, err = run(capsys, "--quiet", data_dir / "validate" / "pointer-line.json")
    assert (code, out) == (1, [])
    assert err == ["1 notifications, 1 operations: 2 errors, 0 warnings"]


def test_forward_skip_is_a_warning_and_exits_0(capsys, data_dir: Path) -> None:
    code, out, err = run(capsys, data_dir / "validate" / "forward-skip.jsonl")
    assert code == 0
    assert len(out) == 1 and ":2:/operations/0/details/status: warning: " in out[0]
    assert "CARD_PROD_DONE follows CARD_PROD_READY without CARD_PROD_ONGOING" in out[0]
    assert err == ["2 notifications, 2 operations: 0 errors, 1 warnings"]


def test_lifecycle_is_checked_across_files(capsys, data_dir: Path) -> None:
    folder = data_dir / "validate" / "cross-file"
    code, out, _ = run(capsys, folder / "1-shipped.json", folder / "2-exception.json")
    assert code == 1
    assert out == [
        f"{folder}/2-exception.json:11:/operations/0/details/status: error: "
        "DATA_EXCEPTION and CARD_SHIPPED cannot both happen to one operation"
    ]


def test_per_file_checks_each_input_alone(capsys, data_dir: Path) -> None:
    code, out, _ = run(capsys, "--per-file", data_dir / "validate" / "cross-file")
    assert (code, out) == (0, [])


def test_directory_is_searched_recursively_for_json_and_jsonl(capsys, data_dir: Path) -> None:
    code, _, err = run(capsys, "--quiet", data_dir / "validate" / "tree")
    assert code == 1  # notes.txt is not read, or it would be "not JSON" (exit 2)
    assert err[-1].startswith("3 notifications, 3 operations")


def test_json_lines_bad_line_is_located_and_the_rest_still_checked(capsys, data_dir) -> None:
    path = data_dir / "validate" / "bad-line.jsonl"
    code, out, err = run(capsys, path)
    assert code == 2
    assert f"d1sim validate: error: {path}:3:58: not JSON: unexpected character" in err[0]
    assert out == [f"{path}:5:/operations/0/cardId: error: required field 'cardId' is missing"]
    assert (
        err[-1] == "3 notifications, 3 operations: 1 errors, 0 warnings, 1 not JSON or unreadable"
    )


def test_file_that_is_not_json_exits_2_with_line_and_column(capsys, data_dir: Path) -> None:
    path = data_dir / "validate" / "not-json.json"
    code, out, err = run(capsys, path)
    assert (code, out) == (2, [])
    reason = "unexpected character, expected a JSON value"
    assert err == [f"d1sim validate: error: {path}:5:17: not JSON: {reason}", err[1]]


def test_missing_path_exits_2_before_reading_anything(capsys, data_dir: Path) -> None:
    code, out, err = run(capsys, data_dir / "seed", "no/such/capture.jsonl")
    assert (code, out) == (2, [])
    assert err == ["d1sim validate: error: no/such/capture.jsonl: no such file or directory"]


def test_unreadable_file_is_reported_and_the_others_checked(capsys, monkeypatch, tmp_path) -> None:
    good, bad = tmp_path / "a.json", tmp_path / "b.json"
    good.write_text('{"operations": []}')
    bad.write_text("{}")
    real_open = Path.open

    def deny(self: Path, *args, **kwargs):
        if self == bad:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    code, out, err = run(capsys, tmp_path)
    assert code == 2 and len(out) == 1
    assert err[0] == f"d1sim validate: error: {bad}: cannot read: Permission denied"


def test_stdin_json_lines(capsys, monkeypatch, data_dir: Path) -> None:
    feed_stdin(monkeypatch, (data_dir / "validate" / "bad-line.jsonl").read_bytes())
    code, out, err = run(capsys, "-")
    assert code == 2
    assert err[0].startswith("d1sim validate: error: <stdin>:3:58: not JSON:")
    assert out == ["<stdin>:5:/operations/0/cardId: error: required field 'cardId' is missing"]


def test_stdin_pretty_printed_document(capsys, monkeypatch, data_dir: Path) -> None:
    feed_stdin(monkeypatch, (data_dir / "validate" / "pointer-line.json").read_bytes())
    code, out, _ = run(capsys, "-")
    assert code == 1
    assert out[1].startswith("<stdin>:13:/operations/0/errorCode: error:")


def test_strict_profile_rejects_unknown_fields(capsys, tmp_path: Path, data_dir: Path) -> None:
    body = json.loads((data_dir / "seed" / "data-prepared.json").read_text())
    body["operations"][0]["details"]["colour"] = "blue"
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(body))
    assert run(capsys, path)[0] == 0
    code, out, _ = run(capsys, "--strict", path)
    assert code == 1
    assert out[0].startswith(f"{path}:1:/operations/0/details/colour: error: unknown field")


def test_byte_order_mark_and_blank_lines_are_accepted(capsys, tmp_path: Path, data_dir) -> None:
    line = (data_dir / "validate" / "tree" / "valid.json").read_bytes().strip()
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + line)
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + line + b"\n\n  \n")
    code, out, err = run(capsys, "--per-file", tmp_path)
    assert (code, out) == (0, [])
    assert err == ["2 notifications, 2 operations: 0 errors, 0 warnings"]


def test_bytes_that_are_not_utf8_are_located(capsys, tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"operations": []}\n{"operations": [{"city": "Li\xe8ge"}]}\n')
    code, _, err = run(capsys, path)
    assert code == 2
    assert err[0] == f"d1sim validate: error: {path}:2:29: not JSON: not UTF-8 (byte 0xe8)"


def test_settling_the_garbage_collector_changes_nothing(capsys, monkeypatch, data_dir) -> None:
    expected = run(capsys, data_dir / "validate")
    monkeypatch.setattr(validate, "SETTLE_EVERY", 1)
    assert run(capsys, data_dir / "validate") == expected


@pytest.mark.slow
def test_console_script_end_to_end(data_dir: Path) -> None:
    script = Path(sys.executable).with_name("d1sim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "d1sim"]
    body = (data_dir / "validate" / "cross-file" / "1-shipped.json").read_bytes()
    other = data_dir / "validate" / "cross-file" / "2-exception.json"
    done = subprocess.run(
        [*command, "validate", "-", str(other)],
        input=body,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout.decode().splitlines() == [
        f"{other}:11:/operations/0/details/status: error: "
        "DATA_EXCEPTION and CARD_SHIPPED cannot both happen to one operation"
    ]
    assert SUMMARY.match(done.stderr.decode())
    assert b"Traceback" not in done.stderr
