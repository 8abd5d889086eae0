"""`d1sim replay` end to end against the reference receiver: verdicts, suites, failures, auth."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, request

from d1sim.contracts.scenario.expansion import summarize
from d1sim.contracts.scenario.loading import load_bundled
from d1sim.simulator.cli.dispatch import main
from d1sim.simulator.delivery.outbox import Outbox
from d1sim.simulator.receiver.app import ReceiverConfig
from d1sim.simulator.web.servers import running_server

FAST_RETRY = ["--backoff-base", "0.01", "--backoff-cap", "0.05"]


def replay(tmp_path: Path, *args: str) -> int:
    return main(["replay", *args, "--db", str(tmp_path / "outbox.db"), "--no-progress"])


def test_bundled_scenarios_converge_on_the_reference_receiver(tmp_path: Path, reference_receiver: Any,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    code = replay(tmp_path, "happy-path", "out-of-order", "duplicates", "unknown-status", "shipment-tracking",
                  "--target", reference_receiver.url + "/notifications/d1/v2/issuers/{issuerId}/cards",
                  "--state-url", reference_receiver.url + "/cards/{cardId}", "--report-json", str(report),
                  "--report-junit", str(tmp_path / "junit.xml"))
    assert code == 0, capsys.readouterr().out
    doc = json.loads(report.read_text())
    assert [s["scenario"] for s in doc["scenarios"]] == ["happy-path", "out-of-order", "duplicates",
                                                         "unknown-status", "shipment-tracking"]
    assert doc["summary"] == {"passed": 15, "failed": 0, "skipped": 0}
    sent = sum(summarize(_items(name)).deliveries for name in ("happy-path", "out-of-order", "duplicates",
                                                              "unknown-status", "shipment-tracking"))
    stats = httpx.get(reference_receiver.url + "/_receiver/stats").json()
    assert stats["posts"] == sent and stats["rejected"] == 0
    assert (tmp_path / "junit.xml").read_text().count("<testcase") == 15


def _items(name: str) -> Any:
    from d1sim.contracts.scenario.expansion import expand_scenario
    return expand_scenario(load_bundled(name))


def test_without_state_url_end_state_is_skipped_not_passed(tmp_path: Path, reference_receiver: Any,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert replay(tmp_path, "happy-path", "--target", reference_receiver.webhook_url) == 0
    out = capsys.readouterr().out
    assert "2 passed, 1 skipped" in out


def _arrival_order_receiver() -> Flask:
    """A receiver with a realistic bug: it holds whatever arrives last."""
    app, held = Flask("last-wins"), {}

    @app.post("/notifications/d1/v2/issuers/<issuer>/cards")
    def notify(issuer: str) -> tuple[str, int]:
        for op in request.get_json()["operations"]:
            held[op["cardId"]] = {"cardId": op["cardId"], "status": op["details"]["status"],
                                  "shipment": op["details"].get("shipment", {})}
        return "", 204

    @app.get("/cards/<card_id>")
    def probe(card_id: str) -> Any:
        return held.get(card_id) or ({"error": "unknown"}, 404)

    return app


def test_a_receiver_that_applies_arrival_order_fails_end_state_naming_the_card(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_server(_arrival_order_receiver()) as url:
        code = replay(tmp_path, "out-of-order", "--target", url + "/notifications/d1/v2/issuers/{issuerId}/cards",
                      "--state-url", url + "/cards/{cardId}", "--report-junit", str(tmp_path / "j.xml"))
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED out-of-order / end_state " in out and "shipment should hold" in out
    assert "<failure" in (tmp_path / "j.xml").read_text()


def test_receiver_outage_recovers_through_retries(tmp_path: Path, start_receiver: Callable[..., Any],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    receiver = start_receiver(ReceiverConfig(fail_first=5))
    report = tmp_path / "r.json"
    code = replay(tmp_path, "receiver-outage", "--target", receiver.webhook_url, "--concurrency", "1",
                  "--state-url", receiver.url + "/cards/{cardId}", "--report-json", str(report), *FAST_RETRY)
    assert code == 0, capsys.readouterr().out
    [scenario] = json.loads(report.read_text())["scenarios"]
    assert scenario["attempts"] == scenario["deliveries"]["delivered"] + 5


@pytest.mark.parametrize(("status", "attempts_per_delivery"), [(400, 1), (404, 1), (500, 3), (429, 3)])
def test_failing_receivers_are_accounted_for_exactly(tmp_path: Path, status: int, attempts_per_delivery: int,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    app = Flask("failing")
    app.post("/hook")(lambda: ("no", status))
    report = tmp_path / "r.json"
    with running_server(app) as url:
        code = replay(tmp_path, "happy-path", "--target", url + "/hook", "--max-attempts", "3",
                      "--report-json", str(report), *FAST_RETRY)
    assert code == 1
    [scenario] = json.loads(report.read_text())["scenarios"]
    assert scenario["deliveries"] == {"pending": 0, "delivered": 0, "dead": 8}
    assert scenario["attempts"] == 8 * attempts_per_delivery
    failed = {e["name"]: e["reason"] for e in scenario["expectations"] if e["outcome"] == "failed"}
    assert "8 dead-lettered" in failed["all_delivered"] and f"8 x {status}" in failed["responses 2xx"]
    assert f"--state dead --db {tmp_path / 'outbox.db'}" in failed["all_delivered"]  # runs as printed


def test_an_unreachable_target_is_said_at_once_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_server(Flask("gone")) as url:
        pass  # the port is free again: nothing listens there now
    started = time.monotonic()
    code = replay(tmp_path, "happy-path", "--target", url + "/hook")  # D1's default patience: minutes
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - started < 10
    assert f"cannot connect to the target {url}/hook" in err and "--keep-retrying-unreachable" in err
    assert "Traceback" not in err
    with Outbox(tmp_path / "outbox.db") as box:
        [run] = box.runs()
        assert run.status == "interrupted" and box.summary(run.id)["pending"] == 8  # resumable, nothing spent


def test_an_unreachable_target_dead_letters_after_retries_when_asked(tmp_path: Path) -> None:
    with running_server(Flask("gone")) as url:
        pass  # the port is free again: nothing listens there now
    report = tmp_path / "r.json"
    code = replay(tmp_path, "happy-path", "--target", url + "/hook", "--max-attempts", "2",
                  "--keep-retrying-unreachable", "--report-json", str(report), *FAST_RETRY)
    assert code == 1
    [scenario] = json.loads(report.read_text())["scenarios"]
    assert scenario["deliveries"]["dead"] == 8 and scenario["attempts"] == 16


def test_a_bad_scenario_file_is_exit_2_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndescription: y\nseed: 1\nstpes:\n  - status: CARD_PROD_REQUESTED\n")
    assert replay(tmp_path, str(bad), "--target", "http://127.0.0.1:9/") == 2
    err = capsys.readouterr().err
    assert f"{bad}:4:" in err and "did you mean 'steps'" in err and "Traceback" not in err


@pytest.mark.parametrize(("args", "message"), [
    (["hapy-path", "--target", "http://127.0.0.1:9/"], "did you mean 'happy-path'"),
    (["happy-path"], "--target is required"),
    ([], "at least one SCENARIO"),
    (["happy-path", "--target", "ftp://x"], "argument --target: expected a URL starting with http"),
    (["happy-path", "--target", "http://[::1"], "argument --target: not a usable URL"),
    (["happy-path", "--target", "http://x/", "--time-scale", "-1"], "must be from 0 to"),
    (["happy-path", "--target", "http://x/", "--timeout", "nan"], "expected a finite number, not 'nan'"),
    (["happy-path", "--target", "http://x/", "--backoff-cap", "inf"], "expected a finite number"),
    (["happy-path", "--target", "http://x/", "--backoff-base", "1e300"], "must be from 0 to 86400"),
    (["happy-path", "--target", "http://x/", "--concurrency", "100000"], "must be from 1 to 1,000"),
    (["happy-path", "--target", "http://x/", "--seed", str(10**23)], "--seed: must be from 0"),
    (["happy-path", "--target", "http://x/", "--client-cert", "/nope.pem"], "no such file"),
    (["happy-path", "--target", "http://x/", "--issuer-id", "SHORT"], "exactly 10 characters"),
    (["/no/such/folder/x.yaml", "--target", "http://x/"], "no such scenario file"),
])
def test_usage_errors_are_exit_2_with_a_clear_message(tmp_path: Path, args: list[str], message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    refused_by_argparse = "argument --" in message or "must be" in message or "finite" in message
    with pytest.raises(SystemExit) if refused_by_argparse else _no_raise():
        assert replay(tmp_path, *args) == 2
    assert message in capsys.readouterr().err


class _no_raise:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_a_folder_is_a_suite_and_list_shows_bundled(tmp_path: Path, reference_receiver: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in ("happy-path", "data-exception"):
        (suite / f"{name}.yaml").write_text(load_bundled(name).source and _bundled_text(name))
    assert replay(tmp_path, str(suite), "--target", reference_receiver.webhook_url) == 0
    out = capsys.readouterr().out
    assert "2 scenarios" in out and "data-exception" in out
    assert main(["replay", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "bulk-file" in listed and "receiver-outage" in listed


def _bundled_text(name: str) -> str:
    from importlib import resources
    return resources.files("d1sim.scenarios").joinpath(f"{name}.yaml").read_text()


def test_running_the_same_command_again_after_completion_starts_a_new_run(
        tmp_path: Path, reference_receiver: Any, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("happy-path", "--target", reference_receiver.webhook_url)
    assert replay(tmp_path, *args) == 0 and replay(tmp_path, *args) == 0
    capsys.readouterr()
    assert main(["runs", "list", "--db", str(tmp_path / "outbox.db")]) == 0
    assert capsys.readouterr().out.count("happy-path") == 2


def test_resume_by_run_id_delivers_what_is_owed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from d1sim.simulator.delivery.outbox import Outbox

    app, down, got = Flask("flaky"), [True], []

    @app.post("/notifications/d1/v2/issuers/<issuer>/cards")
    def notify(issuer: str) -> tuple[str, int]:
        if down[0]:
            return "down", 503
        got.append(request.get_data())
        return "", 204

    with running_server(app) as url:
        target = url + "/notifications/d1/v2/issuers/{issuerId}/cards"
        assert replay(tmp_path, "happy-path", "--target", target, "--max-attempts", "1") == 1
        with Outbox(tmp_path / "outbox.db") as outbox:
            [run] = outbox.runs()
            for item in outbox.deliveries(run.id, state="dead"):
                outbox.requeue(item.id)  # as if the run had been killed before sending them
            outbox.set_run_status(run.id, "interrupted")
        assert replay(tmp_path, "happy-path", "--target", target, "--resume", "r-nope") == 2
        assert "no run r-nope" in capsys.readouterr().err
        assert replay(tmp_path, "data-exception", "--target", target, "--resume", run.id) == 2
        assert "was not made by this command" in capsys.readouterr().err
        down[0] = False
        assert replay(tmp_path, "happy-path", "--target", target, "--resume", run.id) == 0
    assert f"{run.id} (resumed)" in capsys.readouterr().out
    assert len(got) == 8
    with Outbox(tmp_path / "outbox.db") as outbox:
        assert len(outbox.runs()) == 1 and outbox.summary(run.id)["delivered"] == 8
