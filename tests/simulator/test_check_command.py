"""``d1sim check``: verdict lines, failure reports with a replay line, reports, exit codes."""

from __future__ import annotations

import json
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from broken_receivers import TOKEN, broken

from d1sim.contracts.checks import check_ids
from d1sim.simulator.cli import dispatch as cli
from d1sim.simulator.receiver.app import ReceiverConfig, create_app
from d1sim.simulator.web.servers import running_server

FEW = ["--max-examples", "10"]
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def d1sim(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """``d1sim(*argv)`` -> (exit code, stdout, stderr), with ``check`` wired into the CLI."""
    if "d1sim.simulator.cli.check" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(
            cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "d1sim.simulator.cli.check")
        )

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = cli.main(["check", *argv])
        except SystemExit as exit_:  # argparse refuses a bad option value itself
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """``serve(app)`` -> base URL of ``app`` on a free port, stopped at teardown."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield lambda app: stack.enter_context(running_server(app))


def probe_of(url: str) -> list[str]:
    return ["--state-url", url + "/cards/{cardId}"]


@pytest.mark.slow
def test_the_reference_receiver_passes_every_check(d1sim: Run, serve: Callable[[Any], str]) -> None:
    url = serve(create_app(ReceiverConfig(bearer_token=TOKEN)))
    code, out, err = d1sim("--target", url, *probe_of(url), "--bearer-token", TOKEN, *FEW)
    assert code == 0, out + err
    verdicts = [
        line.split()[:2]
        for line in out.splitlines()
        if line.startswith(("passed", "failed", "skipped"))
    ]
    assert verdicts == [["passed", check_id] for check_id in check_ids()]
    assert "11 checks: 11 passed, 0 failed, 0 skipped in" in out
    assert TOKEN not in out + err


@pytest.mark.slow
def test_a_failure_shows_the_example_what_came_back_what_was_due_and_replays(
    d1sim: Run, serve: Callable[[Any], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = serve(broken("answers 409 to a duplicate").build())
    code, out, _ = d1sim(
        "--target",
        url,
        *probe_of(url),
        "--bearer-token",
        TOKEN,
        *FEW,
        "--checks",
        "idempotent_on_duplicates,accepts_valid_notification",
    )
    assert code == 1
    assert out.splitlines()[1].startswith("passed   accepts_valid_notification")
    assert out.splitlines()[2].startswith("failed   idempotent_on_duplicates")
    assert "FAILED idempotent_on_duplicates: The same notification delivered again gets 2xx" in out
    assert "delivered again (byte for byte) (Authorization: the configured token)" in out
    assert '"operations": [' in out and "-> 409 " in out
    assert "  got:      409 " in out and "  expected: 2xx" in out
    replay = next(line for line in out.splitlines() if line.startswith("  replay:"))
    assert '--bearer-token "$D1SIM_BEARER_TOKEN"' in replay and TOKEN not in out
    monkeypatch.setenv("D1SIM_BEARER_TOKEN", TOKEN)
    argv = [
        word.replace("$D1SIM_BEARER_TOKEN", TOKEN) for word in shlex.split(replay.split(":", 1)[1])
    ]
    assert argv[:2] == ["d1sim", "check"]
    code, again, _ = d1sim(*argv[2:])
    assert code == 1 and "1 check: 0 passed, 1 failed" in again
    got = [text.split("  got:")[1].splitlines()[0].strip() for text in (out, again)]
    assert got[0] == got[1] == '409 {"error":"operation already received"}'


@pytest.mark.slow
def test_reports_have_one_entry_per_check(
    d1sim: Run, serve: Callable[[Any], str], tmp_path: Path
) -> None:
    url = serve(broken("accepts a non-JSON body with 204").build())
    report, junit = tmp_path / "out" / "checks.json", tmp_path / "checks.xml"
    code, _, err = d1sim(
        "--target",
        url,
        "--bearer-token",
        TOKEN,
        *FEW,
        "--seed",
        "5",
        "--report-json",
        str(report),
        "--junit",
        str(junit),
    )
    assert code == 1 and "reports:" in err
    document = json.loads(report.read_text())
    assert document["target"] == url and document["seed"] == 5
    entries = {c["id"]: c for c in document["checks"]}
    assert list(entries) == check_ids()
    assert {c["outcome"] for c in document["checks"]} == {"passed", "failed", "skipped"}
    failure = entries["rejects_malformed_json"]
    assert failure["outcome"] == "failed" and failure["reason"].startswith("204")
    assert failure["example"]["requests"][0]["answer"] == "204"
    assert failure["example"]["replay"].endswith("--checks rejects_malformed_json --seed 5")
    assert entries["converges_out_of_order"]["reason"].startswith("needs a state probe")
    assert set(entries["accepts_batches"]) >= {"id", "outcome", "reason", "example"}
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert [c.get("name") for c in cases] == check_ids()
    assert (
        ET.parse(junit).getroot().find(".//testcase[@name='rejects_malformed_json']/failure")
        is not None
    )
    assert TOKEN not in report.read_text() + junit.read_text()


@pytest.mark.slow
def test_oauth_is_obtained_like_d1_does_and_the_secret_never_shows(
    d1sim: Run, serve: Callable[[Any], str]
) -> None:
    url = serve(create_app(ReceiverConfig(client_id="d1-client", client_secret="oauth-S3CRET")))
    code, out, err = d1sim(
        "--target",
        url,
        "--oauth-token-url",
        url + "/authz/d1/v1/oauth2/token",
        "--client-id",
        "d1-client",
        "--client-secret",
        "oauth-S3CRET",
        *FEW,
        "--checks",
        "rejects_missing_auth,accepts_batches",
    )
    assert code == 0, out + err
    assert "passed   rejects_missing_auth" in out and "oauth-S3CRET" not in out + err


@pytest.mark.slow
def test_wrong_client_credentials_stop_before_any_check(
    d1sim: Run, serve: Callable[[Any], str]
) -> None:
    url = serve(create_app(ReceiverConfig(client_id="d1-client", client_secret="right")))
    code, out, err = d1sim(
        "--target",
        url,
        "--oauth-token-url",
        url + "/authz/d1/v1/oauth2/token",
        "--client-id",
        "d1-client",
        "--client-secret",
        "wrong-S3CRET",
    )
    assert code == 2 and out == ""
    assert "token endpoint" in err and "401" in err and "wrong-S3CRET" not in err


def test_an_unknown_check_id_is_a_usage_error_with_a_suggestion(d1sim: Run) -> None:
    code, out, err = d1sim(
        "--target", "http://127.0.0.1:9", "--checks", "accepts_batches,rejects_missing_auht"
    )
    assert code == 2 and out == ""
    assert err.strip() == (
        "d1sim check: error: unknown check 'rejects_missing_auht' "
        "(did you mean 'rejects_missing_auth'?); see --list-checks"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--state-url", "http://h/cards/"], "must contain {cardId}"),
        (["--state-url", "ftp://h/cards/{cardId}"], "expected a URL starting with http://"),
        (["--max-examples", "0"], "argument --max-examples: must be from 1 to 100,000, not 0"),
        (["--issuer-id", "SHORT"], "--issuer-id must be exactly 10 characters"),
        (["--client-id", "x"], "--client-id needs --oauth-token-url"),
        (["--oauth-token-url", "http://h/token"], "needs --client-id and --client-secret"),
    ],
)
def test_bad_options_are_usage_errors(d1sim: Run, argv: list[str], message: str) -> None:
    code, _, err = d1sim("--target", "http://127.0.0.1:9", *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_target_that_cannot_be_reached_stops_before_any_check(d1sim: Run) -> None:
    with running_server(create_app()) as url:
        pass  # the port was just free and is closed again
    code, out, err = d1sim("--target", url)
    assert code == 2 and out == ""
    assert err.startswith(f"d1sim check: error: cannot reach the target {url}/notifications/d1/v2/")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("localhost:8090", "expected a URL starting with http:// or https://"),
        ("http://[::1", "not a usable URL: 'http://[::1' (Invalid IPv6 URL)"),
        ("http://127.0.0.1:port/", "Port could not be cast to integer"),
        ("http://127.0.0.1:70000/", "Port out of range"),
        ("http:///cards", "the URL has no host"),
        ("http://h/" + "a" * 70_000, "a URL of 70,009 characters; at most 2,048"),
    ],
)
def test_the_target_must_be_an_http_url(d1sim: Run, target: str, says: str) -> None:
    code, _, err = d1sim("--target", target)
    assert code == 2 and "argument --target: " in err and says in err and "Traceback" not in err


def test_list_checks_names_every_check_and_what_it_needs(d1sim: Run) -> None:
    code, out, _ = d1sim("--list-checks")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == check_ids()
    assert "[needs state probe]" in out and "[needs auth]" in out


@pytest.mark.slow
def test_state_and_auth_checks_are_skipped_with_a_reason(
    d1sim: Run, serve: Callable[[Any], str]
) -> None:
    url = serve(create_app())
    code, out, _ = d1sim(
        "--target", url, *FEW, "--checks", "converges_out_of_order,rejects_missing_auth"
    )
    assert code == 0
    assert "skipped  converges_out_of_order       needs a state probe" in out
    assert "skipped  rejects_missing_auth         no auth configured" in out
    assert "2 checks: 0 passed, 0 failed, 2 skipped" in out


@pytest.mark.slow
def test_a_probe_that_does_not_work_is_a_usage_error(
    d1sim: Run, serve: Callable[[Any], str]
) -> None:
    url = serve(create_app())
    code, _, err = d1sim("--target", url, "--state-url", url + "/_receiver/stats?card={cardId}")
    assert code == 2 and "the state probe does not work" in err
    assert "expected 200 with a JSON object with a 'status', or 404" in err


@pytest.mark.slow
def test_secrets_may_come_from_the_environment(
    d1sim: Run, serve: Callable[[Any], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = serve(create_app(ReceiverConfig(bearer_token=TOKEN)))
    monkeypatch.setenv("D1SIM_BEARER_TOKEN", TOKEN)
    code, out, err = d1sim("--target", url, *FEW, "--checks", "rejects_missing_auth")
    assert code == 0, out + err
    assert "passed   rejects_missing_auth" in out


def test_a_bearer_token_and_oauth_are_exclusive(d1sim: Run) -> None:
    code, _, err = d1sim(
        "--target", "http://127.0.0.1:9", "--bearer-token", "t", "--oauth-token-url", "http://h/t"
    )
    assert code == 2 and "choose one: --bearer-token or --oauth-token-url" in err


@pytest.mark.slow
def test_db_records_the_verdicts_and_the_ui_shows_the_minimal_example(
    d1sim: Run, serve: Callable[[Any], str], tmp_path: Path
) -> None:
    from d1sim.simulator.ui import create_ui_app

    url = serve(broken("answers 409 to a duplicate").build())
    db = tmp_path / "d1sim.db"
    code, _, err = d1sim("--target", url, "--bearer-token", TOKEN, *FEW,
                         "--checks", "idempotent_on_duplicates", "--db", str(db))
    assert code == 1 and f"d1sim ui --db {db}" in err
    page = create_ui_app(db).test_client().get("/checks").get_data(as_text=True)
    assert "idempotent_on_duplicates" in page and "0 passed" in page and "1 failed" in page
    assert "Minimal failing example" in page and "expected: 2xx" in page and TOKEN not in page


def test_a_wrong_token_is_one_clear_error_up_front(d1sim: Run, serve: Callable[[Any], str]) -> None:
    url = serve(create_app(ReceiverConfig(bearer_token=TOKEN)))
    code, out, err = d1sim("--target", url, "--bearer-token", "not-the-token", *FEW)
    assert code == 2
    assert "the target answered 401 to the configured credentials" in err
    assert len(err.strip().splitlines()) == 1 and "passed" not in out and "failed" not in out


def test_no_credentials_where_some_are_needed_is_one_clear_error(
    d1sim: Run, serve: Callable[[Any], str]
) -> None:
    url = serve(create_app(ReceiverConfig(bearer_token=TOKEN)))
    code, _, err = d1sim("--target", url, *FEW)
    assert code == 2 and "without credentials" in err and "--bearer-token" in err


def test_skipped_checks_are_listed_as_waived_in_every_report(
    d1sim: Run, serve: Callable[[Any], str], tmp_path: Path
) -> None:
    url = serve(create_app(ReceiverConfig(bearer_token=TOKEN)))
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    code, out, _ = d1sim(
        "--target", url, "--bearer-token", TOKEN, "--checks", "accepts_batches,responds_in_time",
        "--skip-checks", "responds_in_time", "--max-examples", "3", "--settle", "0.5",
        "--report-json", str(report), "--junit", str(junit),
    )
    assert code == 0
    assert any(line.startswith("waived") and "responds_in_time" in line for line in out.splitlines())
    assert "1 waived" in out
    entries = {e["id"]: e for e in json.loads(report.read_text())["checks"]}
    assert entries["responds_in_time"]["outcome"] == "waived"
    assert json.loads(report.read_text())["settle"] == 0.5
    case = next(c for c in ET.parse(junit).getroot().iter("testcase") if c.get("name") == "responds_in_time")
    assert "waived" in case.find("skipped").get("message")  # type: ignore[union-attr]


def test_an_unknown_waived_check_is_a_usage_error(d1sim: Run) -> None:
    code, _, err = d1sim("--target", "http://127.0.0.1:9", "--skip-checks", "responds_in_tim")
    assert code == 2 and "did you mean 'responds_in_time'" in err
