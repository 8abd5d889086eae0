"""``d1sim validate --jobs N``: workers report exactly what one process does, and never hang it."""

from __future__ import annotations

import functools
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from d1sim.contracts.notification.validation import NotificationValidator
from d1sim.simulator.cli import dispatch as cli
from d1sim.simulator.cli import validate
from d1sim.simulator.validate import chunks as validate_chunks
from d1sim.simulator.validate import pipeline as validate_pipeline
from d1sim.simulator.validate import workers as validate_workers
from d1sim.simulator.validate.pipeline import ChunkPipeline, auto_jobs, plan_chunks
from d1sim.simulator.validate.reader import expand_inputs
from tests.simulator.captures import mixed_capture

Outcome = tuple[int, str, str]  # exit code, stdout, stderr


# Chunks of about 20 lines of the mixed capture: many boundaries, a few chunks per worker.
SMALL_CHUNKS = validate.Tuning(chunk_bytes=8192)


def validate_command(argv: list[str]) -> int:
    """``d1sim validate ARGV`` in-process, with small chunks."""
    words = ["validate", *argv]
    args = cli.build_parser(words).parse_args(words)
    args.func = functools.partial(validate.run, tuning=SMALL_CHUNKS)
    return cli.run(args)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Outcome:
    """Run ``d1sim validate`` in-process: (exit code, stdout, stderr), byte for byte."""
    code = validate_command([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def capture(tmp_path: Path) -> list[Path]:
    """The mixed capture (cut into ``SMALL_CHUNKS`` when workers check it)."""
    return mixed_capture(tmp_path)


def test_the_capture_has_every_kind_of_finding(capsys, capture: list[Path]) -> None:
    code, out, err = run(capsys, "--jobs", "1", "--format", "json", *capture)
    found = [orjson.loads(line) for line in out.splitlines()]
    codes = {record["code"] for record in found}
    assert code == 2  # broken lines
    assert {"schema", "lifecycle.status", "lifecycle.card", "lifecycle.error"} <= codes
    assert {"lifecycle.skip", "lifecycle.impossible", "lifecycle.shipmentOrder"} <= codes
    assert any(record["severity"] == "warning" for record in found)
    assert "not JSON" in err
    # Lifecycles span the two files: checked apart, the second file's findings differ.
    second = [r for r in found if r["path"] == str(capture[1])]
    _, alone, _ = run(capsys, "--jobs", "1", "--format", "json", capture[1])
    assert second and [orjson.loads(line) for line in alone.splitlines()] != second


@pytest.mark.parametrize(
    "options",
    [[], ["--format", "json"], ["--per-file"], ["--strict"], ["--quiet"]],
    ids=["text", "json", "per-file", "strict", "quiet"],
)
@pytest.mark.parametrize("jobs", ["2", "3"])
def test_workers_report_exactly_what_one_process_does(
    capsys, capture: list[Path], options: list[str], jobs: str
) -> None:
    alone = run(capsys, "--jobs", "1", *options, *capture)
    assert run(capsys, "--jobs", jobs, *options, *capture) == alone
    assert multiprocessing.active_children() == []  # every worker was stopped


def test_workers_mixed_with_documents_and_directories(capsys, capture, data_dir) -> None:
    inputs = [data_dir / "validate", capture[0], data_dir / "validate" / "cross-file", capture[1]]
    assert run(capsys, "--jobs", "2", *inputs) == run(capsys, "--jobs", "1", *inputs)


@pytest.mark.timeout(60)
def test_a_worker_that_dies_does_not_hang_the_run(capsys, monkeypatch, capture) -> None:
    alone = run(capsys, "--jobs", "1", *capture)
    main, real = os.getpid(), validate_workers.check_chunk

    def dies(chunk, strict=False):  # the workers' copy only: this process checks the rest
        if os.getpid() != main and chunk.start >= 3 * 8192:
            os._exit(3)
        return real(chunk, strict)

    monkeypatch.setattr(validate_workers, "check_chunk", dies)
    code, out, err = run(capsys, "--jobs", "3", *capture)
    assert (code, out) == alone[:2]
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "exit code 3; checking the rest in this process" in warnings[0]
    assert [line for line in err.splitlines() if line not in warnings] == alone[2].splitlines()
    assert multiprocessing.active_children() == []


@pytest.mark.timeout(60)
def test_a_chunk_a_worker_fails_on_is_checked_again_here(capsys, monkeypatch, capture) -> None:
    alone = run(capsys, "--jobs", "1", *capture)
    main, real = os.getpid(), validate_workers.check_chunk

    def fails(chunk, strict=False):
        if os.getpid() != main and chunk.start == 8192:
            raise MemoryError  # something that would not happen again here
        return real(chunk, strict)

    monkeypatch.setattr(validate_workers, "check_chunk", fails)
    assert run(capsys, "--jobs", "2", *capture) == alone


@pytest.mark.timeout(60)
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_line_that_breaks_the_checker_fails_the_same_way_with_workers(
    monkeypatch, capture, jobs: str
) -> None:
    def breaks(self, instance):
        raise RecursionError("too deep")

    monkeypatch.setattr(NotificationValidator, "iter_problems", breaks)
    with pytest.raises(RecursionError, match="too deep"):
        validate_command(["--jobs", jobs, *map(str, capture)])
    assert multiprocessing.active_children() == []


def test_an_unreadable_json_lines_file_is_reported_once(capsys, monkeypatch, capture) -> None:
    def deny(path, start, end, limit):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(validate_chunks, "read_line_range", deny)
    code, out, err = run(capsys, "--jobs", "2", capture[0])
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"d1sim validate: error: {capture[0]}: cannot read: Permission denied",
        "0 notifications, 0 operations: 0 errors, 0 warnings, 1 not JSON or unreadable",
    ]


@pytest.mark.parametrize(
    ("jobs", "says"),
    [("0", "must be from 1"), ("-1", "must be from 1"), ("two", "expected a whole number"),
     ("100000", "must be from 1 to")],
)
def test_jobs_must_be_a_whole_number_up_to_four_per_cpu(capsys, jobs: str, says: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["validate", "--jobs", jobs, "-"])
    assert exit_.value.code == 2
    assert f"argument --jobs: {says}" in capsys.readouterr().err


def test_small_inputs_stay_in_one_process(monkeypatch, capture: list[Path]) -> None:
    monkeypatch.setattr(validate_pipeline, "available_cpus", lambda: 4)
    assert auto_jobs(expand_inputs(map(str, capture))) == 1
    assert auto_jobs(expand_inputs(map(str, capture)), parallel_bytes=1000) == 4
    assert auto_jobs(expand_inputs(["-", "tests/data/validate/pointer-line.json"])) == 1


def test_chunks_cover_each_json_lines_input_in_order(capture: list[Path], data_dir) -> None:
    sources = expand_inputs([str(capture[0]), str(data_dir / "validate"), str(capture[1])])
    chunks = plan_chunks(sources, size=1000)
    assert [c.index for c in chunks] == sorted(c.index for c in chunks)
    for index in {c.index for c in chunks}:
        mine = [c for c in chunks if c.index == index]
        assert mine[0].start == 0 and mine[-1].end is None
        assert all(a.end == b.start for a, b in zip(mine, mine[1:], strict=False))
    assert len({c.span for c in chunks}) == len(chunks) and min(c.span for c in chunks) >= len(sources)


def test_a_pipeline_without_workers_checks_in_this_process(capture: list[Path]) -> None:
    sources = expand_inputs([str(capture[0])])
    with ChunkPipeline(plan_chunks(sources, size=4096), jobs=1) as pipeline:
        results = [result for _, result in pipeline.results_of(0)]
    assert sum(r.lines for r in results) == len(capture[0].read_bytes().splitlines())


@pytest.mark.slow
def test_console_script_with_workers_matches_one_process(tmp_path: Path) -> None:
    paths = [str(p) for p in mixed_capture(tmp_path, seed=9, cards=2500)]  # several chunks
    script = Path(sys.executable).with_name("d1sim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "d1sim"]

    def outcome(jobs: str) -> tuple[int, bytes, bytes]:
        done = subprocess.run(
            [*command, "validate", "--jobs", jobs, *paths], capture_output=True, timeout=120
        )
        return done.returncode, done.stdout, done.stderr

    alone = outcome("1")
    assert alone[0] == 2 and alone[1].count(b"\n") > 100
    assert outcome("2") == alone


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_with_another_thread_running_workers_come_from_a_fork_server(capsys, capture) -> None:
    alone = run(capsys, "--jobs", "1", *capture)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert validate_workers.worker_context()[0].get_start_method() == "forkserver"
        assert run(capsys, "--jobs", "2", *capture) == alone
    finally:
        stop.set()
        other.join()
    assert validate_workers.worker_context()[0].get_start_method() == "fork"
