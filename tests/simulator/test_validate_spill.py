"""``d1sim validate`` with more operationIds than it keeps in memory reports exactly what it would
with all of them in memory: same lines, same order, same exit code (only printed at the end)."""

from __future__ import annotations

import copy
import functools
import io
import json
import sys
from pathlib import Path

import orjson
import pytest

from d1sim.contracts.payloads.factory import PayloadFactory
from d1sim.simulator.cli import dispatch as cli
from d1sim.simulator.cli import validate
from d1sim.simulator.validate import spill
from d1sim.simulator.validate.pipeline import ChunkPipeline, plan_chunks
from d1sim.simulator.validate.reader import expand_inputs, read_source
from d1sim.simulator.validate.run import Validation
from tests.simulator.captures import mixed_capture

Outcome = tuple[int, str, str]  # exit code, stdout, stderr
IN_MEMORY = validate.Tuning(chunk_bytes=8192)  # the default keep: these captures fit


def run(capsys: pytest.CaptureFixture[str], argv: list[str | Path], keep: int | None = None,
        stdin: bytes | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> Outcome:
    """``d1sim validate ARGV`` in-process (small chunks), keeping ``keep`` operationIds."""
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    words = ["validate", *map(str, argv)]
    args = cli.build_parser(words).parse_args(words)
    tuning = IN_MEMORY if keep is None else validate.Tuning(chunk_bytes=8192, keep_operations=keep)
    args.func = functools.partial(validate.run, tuning=tuning)
    code = cli.run(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def spills(monkeypatch: pytest.MonkeyPatch) -> list[spill.Spill]:
    """Every Spill the run starts (so a test knows its records did go to disk)."""
    started: list[spill.Spill] = []
    real = spill.Spill.start

    def start(self: spill.Spill, checker: object) -> None:
        started.append(self)
        real(self, checker)  # type: ignore[arg-type]

    monkeypatch.setattr(spill.Spill, "start", start)
    return started


def late_document(card: str, note: str) -> dict:
    """A notification for the operation that opens the capture, on another card, with a second
    shipment report without lastUpdatedAt: two problems only the state can tell, after one the
    operation shows on its own (an errorCode)."""
    shipped = copy.deepcopy(SHIPPED)
    shipped["cardId"], shipped["errorCode"] = card, "E42"
    shipped["details"]["shipment"] = {"estimatedDeliveryDate": "2025-01-24T00:00:00Z", "note": note}
    return {"operations": [shipped]}


SHIPPED = PayloadFactory(11).lifecycle(shipment_updates=0)[-1]
SHIPPED["details"]["shipment"].pop("lastUpdatedAt", None)


def inputs(folder: Path) -> list[Path]:
    """The mixed capture (lifecycles shuffled across two files), with an operation that the
    first line opens and whole documents (a .json, a sniffed file) come back to at the end."""
    first, second = mixed_capture(folder, seed=5, cards=150)
    first.write_bytes(orjson.dumps({"operations": [SHIPPED]}) + b"\n" + first.read_bytes())
    pretty = folder / "late.json"
    pretty.write_text(json.dumps(late_document("other-card", "a"), indent=2))
    sniffed = folder / "late.txt"
    sniffed.write_text(json.dumps(late_document("third-card", "b"), indent=4))
    return [first, pretty, second, sniffed]


@pytest.mark.parametrize("options", [[], ["--format", "json"], ["--per-file"], ["--quiet"], ["--strict"]],
                         ids=["text", "json", "per-file", "quiet", "strict"])
@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("keep", [1, 7, 60])
def test_a_bounded_run_reports_exactly_what_one_in_memory_does(
    capsys, tmp_path: Path, spills, options: list[str], jobs: str, keep: int
) -> None:
    argv: list[str | Path] = ["--jobs", jobs, *options, *inputs(tmp_path)]
    in_memory = run(capsys, argv)
    assert not spills
    assert run(capsys, argv, keep=keep) == in_memory
    assert spills  # the records did go to disk


def test_the_capture_has_the_findings_only_the_state_can_tell(capsys, tmp_path: Path) -> None:
    paths = inputs(tmp_path)
    code, out, _ = run(capsys, ["--jobs", "1", *paths], keep=1)
    assert code == 2  # broken lines
    for path in paths[1::2]:  # the whole documents: lines inside them
        assert f"{path}:9:/operations/0/cardId: error: operation" in out
        assert f"{path}:19:/operations/0/errorCode: error: 'errorCode' only appears" in out
        assert f"{path}:14:/operations/0/details/shipment: error: only the first CARD_SHIPPED" in out
    codes = {json.loads(line)["code"] for line in run(capsys, ["--format", "json", *paths], keep=1)[1].splitlines()}
    assert {"lifecycle.card", "lifecycle.shipmentOrder", "lifecycle.impossible", "lifecycle.skip"} <= codes


def test_stdin_read_whole_is_located_as_in_memory(capsys, monkeypatch, tmp_path: Path, spills) -> None:
    paths = inputs(tmp_path)
    document = json.dumps(late_document("stdin-card", "c"), indent=3).encode()
    argv: list[str | Path] = ["--jobs", "2", paths[0], "-", paths[2]]
    in_memory = run(capsys, argv, stdin=document, monkeypatch=monkeypatch)
    assert "<stdin>:9:/operations/0/cardId" in in_memory[1]
    assert run(capsys, argv, keep=3, stdin=document, monkeypatch=monkeypatch) == in_memory
    assert spills


def test_false_alarms_of_the_filter_only_send_more_to_disk(capsys, monkeypatch, tmp_path, spills) -> None:
    # A filter of 8 bits soon says "may have gone" for every operationId: nearly all go to disk.
    monkeypatch.setattr(spill, "FILTER_BITS", 8)
    argv: list[str | Path] = ["--jobs", "2", *inputs(tmp_path)]
    assert run(capsys, argv, keep=5) == run(capsys, argv)
    assert spills


def test_one_operation_reported_more_often_than_memory_keeps(capsys, tmp_path: Path, spills) -> None:
    updates = PayloadFactory(4).lifecycle(shipment_updates=60)  # one operationId, 65 notifications
    lines = [orjson.dumps({"operations": [op]}) for op in updates]
    capture = tmp_path / "updates.jsonl"
    capture.write_bytes(b"\n".join(lines[::-1]) + b"\n")  # newest first
    argv: list[str | Path] = ["--jobs", "1", capture, *mixed_capture(tmp_path, seed=8, cards=20)]
    assert run(capsys, argv, keep=2) == run(capsys, argv)
    assert spills


def test_memory_stays_bounded_in_documents_read_after_chunks(tmp_path: Path) -> None:
    sources = expand_inputs(map(str, mixed_capture(tmp_path, seed=3, cards=150)))
    keep, held = 16, []
    validation = Validation(sources, keep=keep)
    with ChunkPipeline(plan_chunks(sources, size=4096), jobs=1) as pipeline:
        validation.check_chunks(0, pipeline.results_of(0))  # counts many notifications at once
    assert len(validation.checker) <= keep
    for entry in read_source(sources[1]):
        if isinstance(entry, tuple):
            validation.check_document(1, entry)
            held.append(len(validation.checker))
    validation.finish()
    assert len(held) > 100 and max(held) <= keep + 2 * 3  # a look every 2 notifications of <= 3
