"""The mock D1 end to end over loopback sockets: orders become lifecycles pushed to the reference
receiver, productionStatus agrees with it, test hooks, cancellation, idempotency, restarts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest

from d1sim.simulator.receiver.app import ReceiverConfig, create_app
from d1sim.simulator.web.servers import running_server
from tests.simulator.d1_support import HOOK, ISSUER, ORDER, MockD1, ServeProcess, mock_d1, wait_for

FINAL = {
    "happy-path": "CARD_SHIPPED",
    "data-exception": "DATA_EXCEPTION",
    "canceled-in-production": "CARD_PROD_CANCELED",
}


@pytest.fixture
def d1(tmp_path: Path):  # type: ignore[no-untyped-def]
    with mock_d1(tmp_path) as mock:
        mock.register()
        yield mock


@pytest.mark.parametrize("plan_workers", [0, 1])
def test_an_order_runs_its_lifecycle_to_the_receiver_and_status_agrees(tmp_path: Path, plan_workers: int) -> None:
    with mock_d1(tmp_path, plan_workers=plan_workers) as d1:
        d1.register()
        check_one_order(d1)


def check_one_order(d1: MockD1) -> None:
    answer = d1.order("card-1")
    assert answer.status_code == 202
    operation_id = answer.json()["operationId"]
    d1.wait_held("card-1", "CARD_SHIPPED")
    held = d1.probe("card-1")
    status = d1.status("card-1").json()["operations"]
    assert len(status) == 1 and status[0]["operationId"] == operation_id
    assert status[0]["details"]["status"] == "CARD_SHIPPED"
    assert status[0]["details"]["shipment"] == held["shipment"]  # the latest update, as held
    assert d1.receiver_stats()["rejected"] == 0


@pytest.mark.parametrize("scenario", sorted(FINAL))
@pytest.mark.parametrize("hook", ["header", "request-id"])
def test_test_hooks_pick_the_scenario(d1: MockD1, scenario: str, hook: str) -> None:
    card = f"{hook}-{scenario}"
    if hook == "header":
        answer = d1.order(card, headers={"X-D1Sim-Scenario": scenario})
    else:
        answer = d1.order(card, {**ORDER, "issuerRequestId": f"SCN-{scenario}-0001"})
    assert answer.status_code == 202, answer.text
    d1.wait_held(card, FINAL[scenario])
    op = d1.status(card).json()["operations"][0]
    assert op["details"]["status"] == FINAL[scenario]
    assert op["status"] == ("SUCCESSFUL" if scenario == "happy-path" else "FAILED")
    if hook == "request-id":
        assert op["issuerRequestId"] == op["details"]["issuerRequestId"] == f"SCN-{scenario}-0001"


def test_the_same_issuer_request_id_is_one_order(d1: MockD1) -> None:
    body = {**ORDER, "issuerRequestId": "REQ-42"}
    first, second = d1.order("card-7", body), d1.order("card-7", body)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    d1.wait_held("card-7", "CARD_SHIPPED")
    cards = d1.http.get("/_sim/cards").json()["cards"]
    assert [c["cardId"] for c in cards] == ["card-7"]
    assert d1.receiver_stats()["operations"] == 8  # one lifecycle of happy-path, not two
    other = d1.order("card-8", body)
    assert other.status_code == 400 and other.json()["error"] == "issuerRequestId"


def test_a_batch_order_gives_one_operation_per_card(d1: MockD1) -> None:
    cards = [{**ORDER, "cardId": f"bulk-{i}"} for i in range(5)]
    answer = d1.http.post(
        f"/banking/v1/issuers/{ISSUER}/physicalCards/operations:production",
        json={"cards": cards},
        headers=d1.auth(),
    )
    assert answer.status_code == 202
    ops = answer.json()["operations"]
    assert [o["cardId"] for o in ops] == [f"bulk-{i}" for i in range(5)]
    assert len({o["operationId"] for o in ops}) == 5
    for i in range(5):
        d1.wait_held(f"bulk-{i}", "CARD_SHIPPED")
    stats = d1.receiver_stats()
    assert stats["operations"] == 40 and stats["posts"] <= 40  # bulk POSTs of up to 10


def test_cancel_before_shipping_ends_with_canceled_and_drops_the_rest(tmp_path: Path) -> None:
    with mock_d1(tmp_path) as d1:
        d1.register(timeScale=1)  # real time: the card stays at CARD_PROD_REQUESTED for 90 s
        operation_id = d1.order("card-c").json()["operationId"]
        wait_for(lambda: d1.held("card-c") == "CARD_PROD_REQUESTED", what="the first notification")
        answer = d1.cancel("card-c")
        assert answer.status_code == 202 and answer.json() == {"operationId": operation_id}
        d1.wait_held("card-c", "CARD_PROD_CANCELED")
        op = d1.status("card-c").json()["operations"][0]
        assert op["status"] == "FAILED" and "endTime" in op and "errorCode" not in op
        assert d1.receiver_stats()["operations"] == 2  # requested, cancelled: the rest dropped
        again = d1.cancel("card-c")
        assert again.status_code == 409 and again.json()["errorCode"] == "INVALID_CARD_STATE"


def test_a_shipped_card_cannot_be_cancelled(d1: MockD1) -> None:
    d1.order("card-s")
    d1.wait_held("card-s", "CARD_SHIPPED")
    answer = d1.cancel("card-s")
    assert answer.status_code == 409
    assert answer.json()["errorCode"] == "INVALID_CARD_STATE" and "shipped" in answer.json()["message"]
    assert d1.held("card-s") == "CARD_SHIPPED"


def test_advancing_the_clock_moves_lifecycles_on(tmp_path: Path) -> None:
    with mock_d1(tmp_path) as d1:
        d1.register(timeScale=1)
        d1.order("card-a")
        wait_for(lambda: d1.held("card-a") == "CARD_PROD_REQUESTED", what="the first notification")
        moved = d1.http.post("/_sim/clock/advance", json={"by": "4h2m", "issuerId": ISSUER})
        assert moved.status_code == 200
        wait_for(lambda: d1.held("card-a") == "CARD_PROD_READY", what="4 h 2 min later")
        d1.http.post("/_sim/clock/advance", json={"by": "3d"})
        d1.wait_held("card-a", "CARD_SHIPPED")


def test_a_paused_issuer_gets_nothing_until_resumed(d1: MockD1) -> None:
    assert d1.http.post(f"/_sim/issuers/{ISSUER}/pause").json()["paused"] is True
    d1.order("card-p")
    wait_for(lambda: d1.http.get("/_sim").json()["dispatcher"]["lanes"] == 1, what="planning")
    assert d1.receiver_stats()["posts"] == 0
    assert d1.http.post(f"/_sim/issuers/{ISSUER}/resume").json()["paused"] is False
    d1.wait_held("card-p", "CARD_SHIPPED")


@pytest.mark.parametrize("mode", ["bearer", "oauth2"])
def test_notifications_carry_the_issuers_auth(tmp_path: Path, mode: str) -> None:
    receiver = (
        ReceiverConfig(bearer_token="hook-t0ken")
        if mode == "bearer"
        else ReceiverConfig(client_id="d1", client_secret="hook-s3cret-value")
    )
    with mock_d1(tmp_path, receiver) as d1:
        auth = (
            {"type": "bearer", "token": "hook-t0ken"}
            if mode == "bearer"
            else {
                "type": "oauth2",
                "tokenUrl": d1.receiver_url + "/authz/d1/v1/oauth2/token",
                "clientId": "d1",
                "clientSecret": "hook-s3cret-value",
            }
        )
        d1.register(auth=auth)
        d1.order("card-auth")
        d1.wait_held("card-auth", "CARD_SHIPPED")
        assert d1.receiver_stats()["rejected"] == 0


def test_dead_deliveries_are_recovered_and_resent(tmp_path: Path) -> None:
    receiver = ReceiverConfig(fail_first=3, fail_status=400)  # 400: permanent, never retried
    with mock_d1(tmp_path, receiver) as d1:
        d1.register()
        d1.order("card-r", headers={"X-D1Sim-Scenario": "data-exception"})
        index = wait_for(d1.settled, what="the run to settle")
        assert index["dispatcher"]["dead"] == 3
        run_id = d1.http.get("/_sim/runs").json()["runs"][0]["runId"]
        dead = d1.http.get(f"/_sim/runs/{run_id}/deliveries", params={"state": "dead"}).json()
        first = d1.http.get(f"/_sim/deliveries/{dead['deliveries'][0]['id']}").json()
        assert first["history"][0]["statusCode"] == 400 and first["body"]["operations"]
        recovered = d1.http.post("/_sim/deliveries/recover", json={"since": "1h"}).json()
        assert recovered["requeued"] == 3
        d1.wait_held("card-r", "DATA_EXCEPTION")
        summary = d1.http.get(f"/_sim/runs/{run_id}").json()["deliveries"]
        assert summary == {"pending": 0, "delivered": 3, "dead": 0}
        resent = d1.http.post(f"/_sim/deliveries/{first['id']}/resend")
        assert resent.status_code == 202
        wait_for(lambda: d1.receiver_stats()["posts"] == 7, what="the resent duplicate")


def test_replay_requeues_every_undelivered_delivery_at_once_and_sends_them(tmp_path: Path) -> None:
    receiver = ReceiverConfig(fail_first=3, fail_status=400)  # 400: permanent, never retried
    with mock_d1(tmp_path, receiver) as d1:
        assert d1.server is not None
        outbox = d1.server.outbox
        calls: list[list[int]] = []
        requeue_many = outbox.requeue_many

        def recorded(ids: Iterable[int]) -> int:
            calls.append(list(ids))
            return requeue_many(calls[-1])

        outbox.requeue_many = recorded  # type: ignore[method-assign]
        d1.register()
        d1.order("card-r", headers={"X-D1Sim-Scenario": "data-exception"})
        assert wait_for(d1.settled, what="the run to settle")["dispatcher"]["dead"] == 3
        run_id = d1.http.get("/_sim/runs").json()["runs"][0]["runId"]
        dead = d1.http.get(f"/_sim/runs/{run_id}/deliveries", params={"state": "dead"}).json()["deliveries"]
        answer = d1.http.post("/_sim/deliveries/replay", json={})
        assert (answer.status_code, answer.json()) == (202, {"requeued": 3})
        assert calls == [[d["id"] for d in dead]]  # one call, so one transaction
        d1.wait_held("card-r", "DATA_EXCEPTION")  # the dispatcher was woken for the run
        summary = d1.http.get(f"/_sim/runs/{run_id}").json()["deliveries"]
        assert summary == {"pending": 0, "delivered": 3, "dead": 0}
        again = d1.http.post("/_sim/deliveries/replay", json={"issuerId": ISSUER})
        assert (again.status_code, again.json()) == (202, {"requeued": 0})


def test_an_uploaded_scenario_runs_against_the_issuer(d1: MockD1) -> None:
    text = (
        "name: two-cards\ndescription: two cards prepared\nseed: 5\ncards: [up-1, up-2]\n"
        "steps:\n  - status: CARD_PROD_REQUESTED\n  - {status: DATA_PREPARED, after: 1m}\n"
    )
    answer = d1.http.post(f"/_sim/issuers/{ISSUER}/runs", content=text, headers={"Content-Type": "application/yaml"})
    assert answer.status_code == 202 and answer.json()["state"] == "planning", answer.text
    wait_for(lambda: d1.held("up-1") == d1.held("up-2") == "DATA_PREPARED", what="both cards")
    job = d1.http.get(answer.headers["location"]).json()
    assert job["state"] == "planned" and job["scenario"] == "two-cards" and job["seed"] == 5
    assert d1.http.get(f"/_sim/runs/{job['runId']}").json()["deliveries"]["delivered"] == 2
    bundled = d1.http.post(f"/_sim/issuers/{ISSUER}/runs", json={"scenario": "shipment-tracking"})

    def planned() -> dict | None:
        job = d1.http.get(bundled.headers["location"]).json()
        return job if job["state"] == "planned" else None

    assert wait_for(planned, what="the bundled run")["deliveries"] > 0


def test_secrets_never_appear_in_answers(tmp_path: Path) -> None:
    receiver = ReceiverConfig(client_id="d1", client_secret="hook-s3cret-value")
    with mock_d1(tmp_path, receiver) as d1:
        auth = {
            "type": "oauth2",
            "tokenUrl": d1.receiver_url + "/authz/d1/v1/oauth2/token",
            "clientId": "d1",
            "clientSecret": "hook-s3cret-value",
        }
        shown = d1.register(auth=auth, signSecret="whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTEyMzQ=").text
        d1.order("card-x")
        d1.wait_held("card-x", "CARD_SHIPPED")
        run_id = d1.http.get("/_sim/runs").json()["runs"][0]["runId"]
        texts = [shown] + [
            d1.http.get(p).text
            for p in (
                "/_sim/issuers",
                f"/_sim/issuers/{ISSUER}",
                "/_sim/runs",
                f"/_sim/runs/{run_id}",
                f"/_sim/runs/{run_id}/deliveries",
                "/_sim/cards",
                "/_sim",
            )
        ]
        bad = d1.http.put(f"/_sim/issuers/{ISSUER}", json={"auth": {"type": "bearer", "token": 7}})
        for text in [*texts, bad.text]:
            assert "hook-s3cret-value" not in text and "c2VjcmV0LXNpZ25p" not in text
        assert '"***"' in shown


@pytest.mark.slow
def test_serve_subprocess_delivers_and_resumes_after_a_restart(tmp_path: Path) -> None:
    db, config = tmp_path / "d1.db", tmp_path / "issuers.yaml"
    receiver = ReceiverConfig(bearer_token="hook-t0ken-in-config")
    with running_server(create_app(receiver)) as receiver_url:
        # ~2.4 virtual days of happy-path in about 10 s: time to stop it half-way.
        config.write_text(
            f"- issuerId: {ISSUER}\n  webhookUrl: {receiver_url}{HOOK}\n"
            f"  timeScale: 20000\n  requireToken: false\n"
            "  auth: {type: bearer, token: '${HOOK_TOKEN}'}\n"
        )
        env = {"HOOK_TOKEN": "hook-t0ken-in-config"}
        first = ServeProcess("--db", str(db), "--config", str(config), env=env)
        order = f"{first.url}/banking/v1/issuers/{ISSUER}/physicalCards/card-z/operations:production"
        assert httpx.post(order, json=ORDER).status_code == 202

        def held() -> str | None:
            answer = httpx.get(f"{receiver_url}/cards/card-z")
            return answer.json()["status"] if answer.status_code == 200 else None

        try:
            wait_for(lambda: held() in ("DATA_PREPARED", "CARD_PROD_READY"), what="mid-lifecycle")
        finally:  # a failed wait must not leave a server running after the test
            out, err = first.stop()
        assert held() not in ("CARD_PROD_DONE", "CARD_SHIPPED"), "stopped too late to test a resume"
        assert "Traceback" not in err and "listening on" in out
        assert "hook-t0ken" not in out + err
        second = ServeProcess("--db", str(db))  # no --config: the issuer is in the database
        try:
            wait_for(lambda: held() == "CARD_SHIPPED", timeout=30, what="the resumed lifecycle")
            status = httpx.get(f"{second.url}/banking/v1/issuers/{ISSUER}/physicalCards/card-z/productionStatus").json()
            assert status["operations"][0]["details"]["status"] == "CARD_SHIPPED"
        finally:
            out, err = second.stop()
        assert "Traceback" not in err and "hook-t0ken" not in out + err


def test_a_failing_step_is_recorded_against_its_delivery_and_the_lane_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from d1sim.simulator.d1 import dispatcher
    from d1sim.simulator.delivery.retry import judge

    calls = {"n": 0}

    def judge_failing_once(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:  # e.g. a backoff overflow: a bug, not the receiver's answer
            raise OverflowError("(34, 'Numerical result out of range')")
        return judge(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dispatcher, "judge", judge_failing_once)
    with mock_d1(tmp_path) as d1:
        d1.register()
        d1.order("card-s")
        index = wait_for(d1.settled, what="the run to settle")
        assert index["dispatcher"]["dead"] == 1 and index["dispatcher"]["delivered"] >= 1
        run_id = d1.http.get("/_sim/runs").json()["runs"][0]["runId"]
        [dead] = d1.http.get(f"/_sim/runs/{run_id}/deliveries", params={"state": "dead"}).json()["deliveries"]
        history = d1.http.get(f"/_sim/deliveries/{dead['id']}").json()["history"]
        assert "could not judge this answer (OverflowError" in history[-1]["error"]
        summary = d1.http.get(f"/_sim/runs/{run_id}").json()["deliveries"]
        assert summary["pending"] == 0  # the rest of the lane went on without a restart
        assert d1.http.post("/_sim/deliveries/recover", json={"since": "1h"}).json()["requeued"] == 1
        # Requeued is pending at once (dead 0 already): wait until it has been sent, too.
        def settled_again() -> dict[str, int] | None:
            counts = d1.http.get(f"/_sim/runs/{run_id}").json()["deliveries"]
            return counts if counts["dead"] == 0 and counts["pending"] == 0 else None

        counts = wait_for(settled_again, what="the recovered delivery")
        assert counts["delivered"] >= 2
