"""``d1sim scenario show``: a preview of what a scenario sends, as text or JSON, nothing sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from d1sim.contracts.scenario.expansion import planned_deliveries
from d1sim.contracts.scenario.loading import load_bundled
from d1sim.simulator.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["scenario", "show", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lists_the_same_deliveries_replay_would_send(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "out-of-order", "--format", "json", "--deliveries", "7", "--seed", "3")
    doc = json.loads(out)
    planned = list(planned_deliveries(load_bundled("out-of-order"), seed=3))
    assert code == 0 and doc["seed"] == 3 and doc["totals"]["deliveries"] == len(planned)
    assert [(d["seq"], d["statuses"]) for d in doc["deliveries"]] == [(p.seq, list(p.statuses)) for p in planned[:7]]
    assert {f["kind"] for f in doc["faults"]} == {"reorder", "stale"}
    assert doc["totals"]["faultLabels"]["reorder"] > 0 and doc["path"][0]["status"] == "CARD_PROD_REQUESTED"


def test_text_names_cards_path_faults_receiver_knobs_and_deliveries(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "receiver-outage", "--deliveries", "2")
    assert code == 0 and out.startswith("scenario receiver-outage: ")
    assert "  receiver: fail_first=5" in out and "  faults:   none" in out
    assert "CARD_SHIPPED" in out and "first 2 deliveries:" in out
    assert "timedelta" not in out and "None" not in out and "{" not in out


def test_a_file_with_a_mistake_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - status: CARD_PROD_DONNE\n")
    code, out, err = _run(capsys, str(bad))
    assert code == 2 and out == "" and "bad.yaml" in err and "Traceback" not in err
