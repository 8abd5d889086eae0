"""`d1sim runs list` and `d1sim deliveries list|show|resend` over a real outbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.cli.dispatch import main
from d1sim.simulator.delivery.outbox import Attempt, Outbox
from d1sim.simulator.web.servers import running_server


def _dead_run(tmp_path: Path) -> str:
    """A happy-path replay whose every delivery died on a 400."""
    app = Flask("refuses")
    app.post("/hook")(lambda: ("no", 400))
    with running_server(app) as url:
        assert main(["replay", "happy-path", "--target", url + "/hook", "--db", str(tmp_path / "o.db"),
                     "--no-progress"]) == 1
    with Outbox(tmp_path / "o.db") as outbox:
        [run] = outbox.runs()
    return run.id


def test_list_show_and_resend_a_dead_letter(tmp_path: Path, reference_receiver: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    run_id = _dead_run(tmp_path)
    db = ["--db", str(tmp_path / "o.db")]
    capsys.readouterr()
    assert main(["runs", "list", *db]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["RUN", "CREATED", "SCENARIO"] and rows[0].startswith(run_id)
    assert main(["deliveries", "list", run_id, "--state", "dead", *db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8 and all("dead" in line and "last=400" in line for line in lines)
    first = lines[0].split()[0]
    assert main(["deliveries", "show", first, *db]) == 0
    shown = capsys.readouterr().out
    assert "attempt 1: 400" in shown and '"operations"' in shown and "correlation id:" in shown
    assert "attempt 1: 400 in" in shown and "  no" in shown and "b'" not in shown
    correlation = shown.split("correlation id: ")[1].split()[0]
    assert "  no\n  request headers:\n    host: 127.0.0.1:" in shown.lower()  # the sender's own spelling
    assert f"\n    x-correlation-id: {correlation}\n" in shown.lower()
    code = main(["deliveries", "resend", first, "--target", reference_receiver.webhook_url, *db])
    assert code == 0 and "delivered" in capsys.readouterr().out
    assert httpx.get(reference_receiver.url + "/_receiver/stats").json()["posts"] == 1
    assert main(["deliveries", "show", first, *db]) == 0
    assert "attempt 2: 204" in capsys.readouterr().out


def test_show_prints_each_attempts_request_headers_masked_or_says_why_there_are_none(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "o.db"
    with Outbox(db) as box:
        run = box.create_run("happy", "http://r/", {})
        box.add_deliveries(run, [Delivery(1, 0.0, b"{}", ("c1",), ("DATA_PREPARED",), "corr-1", "happy", "c1")])
        sent = (("Authorization", "Bearer s3cr3t-t0ken"), ("x-correlation-id", "corr-1"))
        box.record_attempt(1, Attempt(1.0, 503, 2.0, request_headers=sent))
        box.record_attempt(1, Attempt(2.0, None, 3.0, error="token endpoint said 500", request_headers=()))
        box.record_attempt(1, Attempt(3.0, 204, 4.0))  # as an older d1sim stored it: no headers
    assert main(["deliveries", "show", "1", "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    attempts = shown[shown.index("attempt 1:"):].splitlines()
    assert attempts[1:4] == ["  request headers:", "    Authorization: Bearer ***", "    x-correlation-id: corr-1"]
    assert attempts[4].startswith("attempt 2: token endpoint said 500")
    assert attempts[5] == "  request headers: none (no request went out)"
    assert attempts[6].startswith("attempt 3: 204") and attempts[7:] == ["  request headers: not recorded"]
    assert "s3cr3t-t0ken" not in shown


@pytest.mark.parametrize(("args", "message"), [
    (["runs", "list", "--db", "/nonexistent/o.db"], "no outbox at"),
    (["deliveries", "list", "r-nope"], "no run r-nope; see 'd1sim runs list --db "),
    (["deliveries", "show", "999999"], "no delivery 999999"),
])
def test_unknown_things_are_usage_errors(tmp_path: Path, args: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    if "--db" not in args:
        _dead_run(tmp_path)
        args = [*args, "--db", str(tmp_path / "o.db")]
    capsys.readouterr()
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_demo_runs_end_to_end_on_a_small_selection(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--scenarios", "happy-path,receiver-outage", "--max-examples", "5"]) == 0
    out = capsys.readouterr().out
    assert "2 scenarios, 26 notifications delivered, 6/6 expectations held" in out
    assert "checks and orders 14 passed, 0 failed, 0 skipped" in out
    checks = json.loads((tmp_path / "d1sim-report" / "checks.json").read_text())
    assert len(checks["checks"]) == 11
    orders = json.loads((tmp_path / "d1sim-report" / "serve.json").read_text())["orders"]
    assert [o["outcome"] for o in orders] == ["passed"] * 3
    assert "receiver holds CARD_PROD_CANCELED; productionStatus agrees" in orders[2]["reason"]
    assert (tmp_path / "d1sim-report" / "replay.xml").read_text().count("<testcase") == 6


@pytest.mark.parametrize(("args", "message"), [
    (["--output", "/proc/no-such/dir"], "cannot prepare the report folder"),
    (["--scenarios", "hapy-path"], "did you mean 'happy-path'"),
])
def test_demo_bad_input_is_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", *args]) == 2
    assert message in capsys.readouterr().err
