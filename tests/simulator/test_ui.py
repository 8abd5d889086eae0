"""The inspection UI over a live mock D1 and over a replay's outbox (HTML through HTTP)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import httpx
import pytest

from d1sim.contracts.checks import CheckOutcome
from d1sim.simulator.receiver import ReceiverConfig
from d1sim.simulator.ui import create_ui_app
from d1sim.simulator.ui.queries import OutboxReader
from d1sim.simulator.ui.results import record_outcomes
from tests.simulator.d1_support import ISSUER, MockD1, mock_d1, wait_for
from tests.simulator.outbox_files import old_outbox

pytestmark = pytest.mark.slow


def _dead_delivery(mock: MockD1, card: str = "card-ui-1") -> int:
    """Order one card with a receiver that fails the first POST and no retries: one dead letter."""
    mock.register(retry={"maxAttempts": 1})
    assert mock.order(card, body={"issuerRequestId": "REQ-ui-42"} | _order()).status_code == 202
    wait_for(mock.settled, what="the run to settle")
    page = mock.http.get("/failures").text
    return int(re.search(r'href="/deliveries/(\d+)"', page).group(1))


def _order() -> dict:
    from d1_support import ORDER

    return dict(ORDER)


def test_pages_show_a_run_its_card_and_the_failed_attempt(tmp_path: Path) -> None:
    with mock_d1(tmp_path, ReceiverConfig(fail_first=1, fail_status=503)) as mock:
        delivery_id = _dead_delivery(mock)
        runs = mock.http.get("/")
        assert runs.status_code == 200 and "text/html" in runs.headers["content-type"]
        run_id = re.search(r'href="/runs/([^"]+)"', runs.text).group(1)
        assert ISSUER in runs.text
        run_page = mock.http.get(f"/runs/{run_id}", params={"state": "dead"}).text
        assert f"/deliveries/{delivery_id}" in run_page
        detail = mock.http.get(f"/deliveries/{delivery_id}").text
        assert "503" in detail and "x-correlation-id" in detail
        # The dispatcher stored what it sent: httpx's own headers are there, not rebuilt ones.
        assert "As sent; credentials are masked." in detail and "python-httpx/" in detail
        card = mock.http.get("/cards/card-ui-1").text
        assert "CARD_PROD_REQUESTED" in card and 'class="box path visited"' in card


def test_resend_goes_through_the_admin_api_and_adds_an_attempt(tmp_path: Path) -> None:
    with mock_d1(tmp_path, ReceiverConfig(fail_first=1, fail_status=503)) as mock:
        delivery_id = _dead_delivery(mock)
        answer = mock.http.post(f"/deliveries/{delivery_id}/resend", follow_redirects=True)
        assert answer.status_code == 200 and "queued to be sent again" in answer.text
        wait_for(lambda: mock.http.get(f"/_sim/deliveries/{delivery_id}").json()["state"] == "delivered",
                 what="the resent delivery")
        history = mock.http.get(f"/_sim/deliveries/{delivery_id}").json()["history"]
        assert [a["statusCode"] for a in history] == [503, 204]
        # The admin API writes every time as RFC 3339 UTC.
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", a["startedAt"]) for a in history)
        run = mock.http.get("/_sim/runs").json()["runs"][0]
        assert run["created"].endswith("Z") and mock.http.get("/_sim/cards").json()["cards"][0]["created"].endswith("Z")
        assert mock.http.get(f"/deliveries/{delivery_id}").text.count('class="attempt"') == 2


def test_cross_site_posts_are_refused(tmp_path: Path) -> None:
    with mock_d1(tmp_path) as mock:
        answer = mock.http.post("/failures/recover", headers={"Origin": "http://evil.example"})
        assert answer.status_code == 403


def test_search_finds_the_card_by_issuer_request_id_and_operation_id(tmp_path: Path) -> None:
    with mock_d1(tmp_path, ReceiverConfig(fail_first=1)) as mock:
        _dead_delivery(mock, "card-ui-7")
        page = mock.http.get("/search", params={"q": "REQ-ui-42"}).text
        assert 'href="/cards/card-ui-7"' in page and "issuerRequestId" in page
        operation_id = mock.http.get("/_sim/cards").json()["cards"][0]["operationId"]
        assert 'href="/cards/card-ui-7"' in mock.http.get("/search", params={"q": operation_id}).text


def test_admin_token_guards_the_pages(tmp_path: Path) -> None:
    with mock_d1(tmp_path, admin_token="t0ken-for-ui") as mock:
        bare = httpx.get(mock.url + "/")
        assert bare.status_code == 401 and bare.headers["WWW-Authenticate"].startswith("Basic")
        assert httpx.get(mock.url + "/", auth=("any", "t0ken-for-ui")).status_code == 200
        assert mock.http.get("/").status_code == 200  # Bearer, as the admin API takes it


def test_replay_outbox_is_shown_read_only_with_the_resend_hint(tmp_path: Path) -> None:
    from d1sim.contracts.scenario.timeline import Delivery
    from d1sim.simulator.delivery.outbox import Attempt, Outbox

    db = tmp_path / "run.db"
    with Outbox(db) as box:
        run = box.create_run("happy-path", "http://127.0.0.1:9/hook", {"issuer_id": "ISSUER0009"})
        body = b'{"operations":[{"cardId":"c-9","operationId":"op-9","details":{"status":"DATA_PREPARED"}}]}'
        box.add_deliveries(run, [Delivery(1, 0.5, body, ("c-9",), ("DATA_PREPARED",), "corr-9", "happy-path", "c-9")])
        box.record_attempt(1, Attempt(1.0, None, 3.0, b"", "connection refused"), state="dead")
    client = create_ui_app(db).test_client()
    page = client.get("/deliveries/1").get_data(as_text=True)
    assert f"d1sim deliveries resend 1 --db {db}" in page and "connection refused" in page
    assert client.post("/deliveries/1/resend").status_code == 405
    def failures(issuer: str) -> str:
        return client.get("/failures", query_string={"issuer": issuer}).get_data(as_text=True)

    assert 'href="/deliveries/1"' in failures("ISSUER0009")
    assert 'href="/deliveries/1"' not in failures("OTHER")
    assert "op-9" in client.get("/search", query_string={"q": "op-9"}).get_data(as_text=True)
    assert client.get("/runs/" + run, query_string={"status": "abc"}).status_code == 400


def test_a_delivery_shows_the_headers_each_attempt_sent_or_says_they_are_rebuilt(tmp_path: Path) -> None:
    from d1sim.contracts.scenario.timeline import Delivery
    from d1sim.simulator.delivery.outbox import Attempt, Outbox

    db = tmp_path / "run.db"
    sent = (("Authorization", "Bearer s3cret-t0ken"), ("User-Agent", "python-httpx/0.28.1"),
            ("x-correlation-id", "corr-7"))
    with Outbox(db) as box:
        run = box.create_run("happy-path", "http://127.0.0.1:9/hook", {"auth": {"mode": "static"}})
        box.add_deliveries(run, [Delivery(1, 0.5, b"{}", ("c-7",), ("DATA_PREPARED",), "corr-7", "happy-path", "c-7")])
        box.record_attempt(1, Attempt(1.0, 503, 3.0, request_headers=sent))
        box.record_attempt(1, Attempt(2.0, 204, 3.0))  # recorded without headers
    page = create_ui_app(db).test_client().get("/deliveries/1").get_data(as_text=True)
    first, second = page.split("<summary>Attempt 1</summary>")[1].split("<summary>Attempt 2</summary>")
    assert "As sent; credentials are masked." in first and "python-httpx/0.28.1" in first
    assert "Bearer ***" in first and "s3cret-t0ken" not in page
    assert "rebuilt from the run&#39;s settings" in second and "python-httpx" not in second


def test_an_unmigrated_outbox_is_shown_as_it_is(tmp_path: Path) -> None:
    db = old_outbox(tmp_path / "old.db", 2)  # d1sim ui opens it read-only: no migration
    client = create_ui_app(db).test_client()
    page = client.get("/deliveries/1").get_data(as_text=True)
    assert "Recorded before d1sim kept each attempt&#39;s headers" in page and "corr-old-1" in page
    assert 'href="/cards/c-old-1"' in client.get("/search", query_string={"q": "REQ-old-1"}).get_data(as_text=True)
    assert "DATA_PREPARED" in client.get("/cards/c-old-1").get_data(as_text=True)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM d1sim_schema").fetchone() == (2,)


def test_check_results_are_recorded_and_rendered(tmp_path: Path) -> None:
    db = tmp_path / "d1sim.db"
    outcomes = [CheckOutcome("accepts_batches", "passed", "", examples=5, seconds=0.1),
                CheckOutcome("rejects_missing_auth", "skipped", "no auth configured")]
    assert record_outcomes(db, "check", "http://127.0.0.1:8090/hook", 7, outcomes) == 2
    page = create_ui_app(db).test_client().get("/checks").get_data(as_text=True)
    assert "accepts_batches" in page and "no auth configured" in page and "1 passed" in page


def test_reader_never_writes(tmp_path: Path) -> None:
    db = tmp_path / "d1sim.db"
    record_outcomes(db, "check", "t", 1, [CheckOutcome("accepts_batches", "passed", "")])
    reader = OutboxReader(db)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.db.execute("DELETE FROM d1sim_checks")
