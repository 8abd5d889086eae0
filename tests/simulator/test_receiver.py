"""The reference receiver: the conformance properties of docs/d1-produce.md section 7, plus its knobs."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d1sim.contracts.lifecycle.convergence import converge
from d1sim.contracts.lifecycle.model import load_lifecycle
from d1sim.simulator.cli import receiver as receiver_command
from d1sim.simulator.errors import UsageError
from d1sim.simulator.receiver.app import ConfigError, ReceiverConfig, create_app
from d1sim.simulator.receiver.store import ReceiverStore
from d1sim.simulator.web.servers import running_server

MODEL = load_lifecycle()
SEED_NAMES = sorted(p.stem for p in (Path(__file__).parents[1] / "data" / "seed").glob("*.json"))
TOKEN = "/authz/d1/v1/oauth2/token"
GRANT = {"grant_type": "client_credentials", "scope": "notifications"}


def op(
    status: str,
    card: str = "card-1",
    *,
    op_id: str = "op-1",
    shipment: dict[str, Any] | None = None,
    start: str = "2025-01-17T06:28:02.492Z",
    **extra: Any,
) -> dict[str, Any]:
    """A schema-valid PRODUCE operation; unknown statuses are reported as PENDING."""
    op_status = MODEL.operation_status(status) if MODEL.is_known(status) else "PENDING"
    details: dict[str, Any] = {"status": status}
    if shipment is not None:
        details["shipment"] = shipment
    body = {
        "operationId": op_id,
        "operation": "PRODUCE",
        "status": op_status,
        "startTime": start,
        "cardId": card,
        "details": details,
    }
    if op_status != "PENDING":
        body["endTime"] = "2025-01-21T09:28:12.492Z"
    return {**body, **extra}


def note(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"operations": list(ops)}


def tracking(status: str, updated: str) -> dict[str, str]:
    return {
        "carrier": "fedex",
        "trackingNumber": "1234567890",
        "status": status,
        "lastUpdatedAt": updated,
    }


# -- accepts, rejects -------------------------------------------------------------------------


@pytest.mark.parametrize("name", SEED_NAMES)
def test_accepts_every_seed_example(receiver, seed_examples, name):
    assert receiver.notify(seed_examples[name]).status_code == 204
    card = seed_examples[name]["operations"][0]["cardId"]
    assert (
        receiver.probe(card)["status"] == seed_examples[name]["operations"][-1]["details"]["status"]
    )


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"operations": [', b"\xff\xfe{}"])
def test_rejects_a_body_that_is_not_json_with_400(receiver, raw):
    response = receiver.notify(raw)
    assert response.status_code == 400
    assert "not JSON" in response.get_json()["error"]
    assert receiver.stats()["rejected"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        "text",
        None,
        {"operations": []},
        {"operations": [{"operationId": "x"}]},
        note(op("DATA_PREPARED", startTime="yesterday")),
        note(op("DATA_PREPARED", cardId="bad id!")),
        note({k: v for k, v in op("DATA_PREPARED").items() if k != "details"}),
    ],
)
def test_rejects_schema_invalid_json_with_400_and_the_problems(receiver, body):
    response = receiver.notify(body)
    assert response.status_code == 400
    problems = response.get_json()["problems"]
    assert problems and all({"pointer", "message"} <= set(p) for p in problems)
    assert receiver.stats()["distinct_operations"] == 0


def test_accepts_unknown_fields_at_every_level(receiver):
    shipment = {
        **tracking("IN_TRANSIT", "2026-05-22T13:55:00Z"),
        "podSignature": "x",
        "lastCheckpoint": {"city": "Paris", "geo": {"lat": 48.8}},
    }
    body = {
        "operations": [
            op(
                "CARD_SHIPPED",
                shipment=shipment,
                priority=1,
                details={"status": "CARD_SHIPPED", "shipment": shipment, "new": []},
            )
        ],
        "batchId": "b-1",
    }
    assert receiver.notify(body).status_code == 204
    assert receiver.probe("card-1") == {
        "cardId": "card-1",
        "status": "CARD_SHIPPED",
        "shipment": shipment,
    }


def test_accepts_a_minimal_operation(receiver):
    minimal = {
        "operationId": "o",
        "operation": "PRODUCE",
        "status": "PENDING",
        "startTime": "2025-01-17T06:28:02Z",
        "cardId": "c",
        "details": {"status": "DATA_PREPARED"},
    }
    assert receiver.notify(note(minimal)).status_code == 204
    assert receiver.probe("c") == {"cardId": "c", "status": "DATA_PREPARED"}


def test_unknown_status_is_accepted_and_later_known_statuses_still_apply(receiver):
    assert receiver.notify(note(op("CARD_QUALITY_CHECKED"))).status_code == 204
    answer = receiver.http.get("/cards/card-1")
    assert answer.status_code == 404 and answer.get_json()["received"] == ["CARD_QUALITY_CHECKED"]
    assert receiver.notify(note(op("DATA_PREPARED"))).status_code == 204
    assert receiver.notify(note(op("CARD_PRINTED_TWICE"))).status_code == 204
    assert receiver.probe("card-1") == {"cardId": "card-1", "status": "DATA_PREPARED"}
    assert receiver.stats()["distinct_operations"] == 3


def test_other_operations_are_recorded_but_never_held(receiver):
    assert receiver.notify(note(op("DATA_PREPARED", operation="ACTIVATE"))).status_code == 204
    assert receiver.probe("card-1") is None


# -- idempotence and convergence --------------------------------------------------------------


def test_duplicates_change_nothing(receiver):
    body = note(op("CARD_PROD_READY"))
    assert [receiver.notify(body).status_code for _ in range(3)] == [204, 204, 204]
    # Same content, other key order: the canonical hash still recognises it.
    reordered = {"operations": [dict(reversed(list(body["operations"][0].items())))]}
    assert receiver.notify(reordered).status_code == 204
    assert receiver.stats() | {"posts": 0} == {
        "posts": 0,
        "operations": 4,
        "distinct_operations": 1,
        "cards": 1,
        "rejected": 0,
        "faulted": 0,
    }
    assert receiver.probe("card-1") == {"cardId": "card-1", "status": "CARD_PROD_READY"}


def test_shipment_updates_delivered_in_reverse_end_at_the_latest(receiver):
    updates = [
        op("CARD_SHIPPED", shipment={"estimatedDeliveryDate": "2026-05-24T00:00:00Z"}),
        op("CARD_SHIPPED", shipment=tracking("IN_TRANSIT", "2026-05-22T13:55:00Z")),
        op("CARD_SHIPPED", shipment=tracking("DELIVERED", "2026-05-23T09:10:00Z")),
    ]
    for update in reversed(updates):
        assert receiver.notify(note(update)).status_code == 204
    assert receiver.probe("card-1")["shipment"] == updates[-1]["details"]["shipment"]


def test_an_older_status_after_a_newer_one_changes_nothing(receiver):
    receiver.notify(note(op("CARD_PROD_DONE")))
    receiver.notify(note(op("CARD_PROD_REQUESTED")))
    assert receiver.probe("card-1")["status"] == "CARD_PROD_DONE"


def test_a_later_order_of_the_same_card_wins(receiver):
    receiver.notify(note(op("CARD_PROD_REQUESTED", op_id="renewal", start="2025-06-01T00:00:00Z")))
    receiver.notify(note(op("CARD_SHIPPED", shipment={})))
    assert receiver.probe("card-1")["status"] == "CARD_PROD_REQUESTED"


LIFE = [op(s) for s in MODEL.main_path[:-1]] + [
    op("CARD_SHIPPED", shipment={"estimatedDeliveryDate": "2026-05-24T00:00:00Z"}),
    op("CARD_SHIPPED", shipment=tracking("IN_TRANSIT", "2026-05-22T13:55:00Z")),
    op("CARD_SHIPPED", shipment=tracking("DELIVERED", "2026-05-23T09:10:00Z")),
    op("CARD_QUALITY_CHECKED"),
    op("DATA_PREPARED"),  # an unknown status and a duplicate
    *(
        op(s, "card-2", op_id="op-2")
        for s in ("CARD_PROD_REQUESTED", "DATA_PREPARED", "DATA_EXCEPTION")
    ),
]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(LIFE), batch=st.integers(1, 4))
def test_any_arrival_order_converges(make_receiver, order, batch):
    receiver = make_receiver()
    for i in range(0, len(order), batch):
        assert receiver.notify(note(*order[i : i + batch])).status_code == 204
    for card, state in converge(LIFE).items():
        assert receiver.probe(card) == state.as_probe()
    assert receiver.probe("card-1")["shipment"]["status"] == "DELIVERED"


def test_a_batch_with_several_cards_applies_every_operation(receiver):
    batch = note(
        op("DATA_PREPARED", "a"),
        op("CARD_SHIPPED", "b", shipment={}),
        op("DATA_EXCEPTION", "c", errorCode="FIELD_INVALID_FORMAT", error="pan"),
        op("CARD_PROD_REQUESTED", "a"),
    )
    assert receiver.notify(batch).status_code == 204
    held = {card: receiver.probe(card)["status"] for card in "abc"}
    assert held == {"a": "DATA_PREPARED", "b": "CARD_SHIPPED", "c": "DATA_EXCEPTION"}
    assert receiver.stats()["cards"] == 3


# -- routes -----------------------------------------------------------------------------------


def test_probe_answers_404_for_an_unknown_card(receiver):
    answer = receiver.http.get("/cards/nobody")
    assert answer.status_code == 404 and "unknown card" in answer.get_json()["error"]


@pytest.mark.parametrize("issuer_id", ["ISSUER001", "ISSUER00001"])
def test_issuer_id_must_have_ten_characters(receiver, issuer_id):
    answer = receiver.notify(note(op("DATA_PREPARED")), issuer_id=issuer_id)
    assert answer.status_code == 404 and "10 characters" in answer.get_json()["error"]
    assert receiver.probe("card-1") is None


def test_other_errors_are_json_too(receiver):
    answer = receiver.http.get("/notifications/d1/v2/issuers/ISSUER0001/cards")
    assert answer.status_code == 405 and "error" in answer.get_json()


def test_reset_forgets_everything(receiver):
    receiver.notify(note(op("DATA_PREPARED")))
    assert receiver.http.post("/_receiver/reset").status_code == 204
    assert receiver.probe("card-1") is None
    assert set(receiver.stats().values()) == {0}


def test_a_file_database_keeps_state_across_restarts(tmp_path):
    path = str(tmp_path / "receiver.db")
    first = ReceiverStore(path)
    first.apply([op("CARD_PROD_READY")])
    first.close()
    again = ReceiverStore(path)
    assert again.probe("card-1") == {"cardId": "card-1", "status": "CARD_PROD_READY"}
    assert again.apply([op("CARD_PROD_READY")]) == 0
    again.close()


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic czNjcmV0Og==", "Bearer", "s3cret"])
def test_static_bearer_rejects_missing_or_wrong_tokens_and_applies_nothing(make_receiver, header):
    receiver = make_receiver(bearer_token="s3cret")
    answer = receiver.notify(note(op("DATA_PREPARED")), {"Authorization": header} if header else {})
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert receiver.probe("card-1") is None and receiver.stats()["distinct_operations"] == 0
    assert (
        receiver.notify(note(op("DATA_PREPARED")), {"Authorization": "Bearer s3cret"}).status_code
        == 204
    )


def test_oauth_token_endpoint_issues_tokens_that_expire(make_receiver):
    now = [1_700_000_000.0]
    receiver = make_receiver(client_id="d1", client_secret="secret", clock=lambda: now[0])
    answer = receiver.http.post(TOKEN, data=GRANT, auth=("d1", "secret"))
    body = answer.get_json()
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert (
        body["expires_in"] == "900"
        and body["token_type"] == "Bearer"
        and body["scope"] == "notifications"
    )
    assert body["expires_at"] == "2023-11-14T22:28:20Z"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    now[0] += 899
    assert receiver.notify(note(op("DATA_PREPARED")), bearer).status_code == 204
    now[0] += 1
    assert receiver.notify(note(op("CARD_PROD_READY")), bearer).status_code == 401
    assert receiver.probe("card-1")["status"] == "DATA_PREPARED"


@pytest.mark.parametrize(
    ("auth", "form", "status", "error"),
    [
        (("d1", "wrong"), GRANT, 401, "invalid_client"),
        (("other", "secret"), GRANT, 401, "invalid_client"),
        (None, GRANT, 401, "invalid_client"),
        (("d1", "secret"), {"grant_type": "password"}, 400, "unsupported_grant_type"),
        (("d1", "secret"), {}, 400, "unsupported_grant_type"),
    ],
)
def test_oauth_token_endpoint_refuses_bad_requests(make_receiver, auth, form, status, error):
    receiver = make_receiver(client_id="d1", client_secret="secret")
    answer = receiver.http.post(TOKEN, data=form, auth=auth)
    assert (answer.status_code, answer.get_json()["error"]) == (status, error)


def test_token_endpoint_is_absent_without_client_credentials(receiver):
    assert receiver.http.post(TOKEN, data=GRANT, auth=("d1", "secret")).status_code == 404


# -- knobs ------------------------------------------------------------------------------------


def test_fail_first_answers_the_first_calls_with_the_fail_status_then_serves(make_receiver):
    receiver = make_receiver(fail_first=2)
    codes = [receiver.notify(note(op("DATA_PREPARED"))).status_code for _ in range(3)]
    assert codes == [503, 503, 204]
    assert receiver.stats() | {"posts": 0} == {
        "posts": 0,
        "operations": 1,
        "distinct_operations": 1,
        "cards": 1,
        "rejected": 0,
        "faulted": 2,
    }


def test_knobs_leave_other_endpoints_alone(make_receiver):
    receiver = make_receiver(fail_first=1, client_id="d1", client_secret="secret")
    assert receiver.http.post(TOKEN, data=GRANT, auth=("d1", "secret")).status_code == 200
    assert receiver.http.get("/cards/card-1").status_code == 404
    assert receiver.notify(note(op("DATA_PREPARED"))).status_code == 503


def test_fault_rate_is_deterministic_with_a_seed_and_replays_after_reset(make_receiver):
    def codes(receiver: Any) -> list[int]:
        return [receiver.notify(note(op("DATA_PREPARED"))).status_code for _ in range(30)]

    first = make_receiver(fault_rate=0.5, fault_status=502, seed=7)
    run = codes(first)
    assert set(run) == {204, 502}
    assert codes(make_receiver(fault_rate=0.5, fault_status=502, seed=7)) == run
    first.http.post("/_receiver/reset")
    assert codes(first) == run


def test_latency_is_added_to_notification_calls_only(make_receiver):
    slept: list[float] = []
    receiver = make_receiver(latency=0.25, sleep=slept.append)
    receiver.notify(note(op("DATA_PREPARED")))
    receiver.probe("card-1")
    assert slept == [0.25]


@pytest.mark.parametrize(
    ("fields", "setting"),
    [
        ({"fault_rate": 1.5}, "fault_rate"),
        ({"fail_status": 204}, "fail_status"),
        ({"fail_first": -1}, "fail_first"),
        ({"latency": float("nan")}, "latency"),
        ({"client_id": "d1"}, "client_id"),
        ({"token_ttl": 0}, "token_ttl"),
        ({"bearer_token": ""}, "bearer_token"),
    ],
)
def test_config_refuses_out_of_range_values(fields, setting):
    with pytest.raises(ConfigError) as caught:
        ReceiverConfig(**fields)
    assert caught.value.setting == setting


# -- over a real socket -----------------------------------------------------------------------


def test_running_server_binds_localhost_on_a_free_port_and_stops():
    with running_server(create_app()) as url:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1" and parts.port
        assert httpx.get(f"{url}/_receiver/stats").status_code == 200
    with pytest.raises(OSError):
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()


def test_reference_receiver_over_http(reference_receiver, seed_examples):
    answer = httpx.post(reference_receiver.webhook_url, json=seed_examples["bulk-notification"])
    assert answer.status_code == 204
    probe = httpx.get(f"{reference_receiver.url}/cards/271b-6e47-8ec3-7f3f")
    assert probe.json() == {"cardId": "271b-6e47-8ec3-7f3f", "status": "DATA_EXCEPTION"}


def test_oauth_flow_and_concurrent_posts_over_http(start_receiver):
    running = start_receiver(ReceiverConfig(client_id="d1", client_secret="secret"))
    token = requests.post(running.url + TOKEN, data=GRANT, auth=("d1", "secret"), timeout=5).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    bodies = [
        note(op(status, f"card-{i}"))
        for i in range(40)
        for status in ("DATA_PREPARED", "CARD_PROD_REQUESTED")
    ]
    with httpx.Client(headers=headers, timeout=5) as client, ThreadPoolExecutor(8) as pool:
        codes = set(
            pool.map(lambda body: client.post(running.webhook_url, json=body).status_code, bodies)
        )
    assert codes == {204}
    assert httpx.get(f"{running.url}/_receiver/stats").status_code == 401
    stats = httpx.get(f"{running.url}/_receiver/stats", headers=headers).json()
    assert (stats["posts"], stats["distinct_operations"], stats["cards"]) == (80, 80, 40)
    assert httpx.get(f"{running.url}/cards/card-39").json()["status"] == "DATA_PREPARED"


# -- the command ------------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="d1sim")
    receiver_command.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["receiver", *argv])


@pytest.fixture(autouse=True)
def _no_secret_env(monkeypatch):
    monkeypatch.delenv(receiver_command.BEARER_ENV, raising=False)
    monkeypatch.delenv(receiver_command.SECRET_ENV, raising=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fail-status", "200"], "--fail-status must be an HTTP error status"),
        (["--client-id", "d1"], "--client-id and client secret must be given together"),
        (
            ["--bearer-token", "t", "--client-id", "d1", "--client-secret", "s"],
            "choose one kind of auth",
        ),
        (["--db", "/no/such/folder/r.db"], "does not exist"),
    ],
)
def test_command_turns_bad_values_into_usage_errors(argv, message):
    with pytest.raises(UsageError, match=message):
        receiver_command.config_from_args(parse(*argv))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fault-rate", "2"], "argument --fault-rate: must be from 0 to 1, not 2"),
        (["--fault-rate", "nan"], "argument --fault-rate: expected a finite number, not 'nan'"),
        (["--fail-first", "-3"], "argument --fail-first: must be from 0 to"),
        (["--port", "70000"], "argument --port: must be from 0 to 65,535, not 70,000"),
        (["--latency", "1e300"], "argument --latency: must be from 0 to 86400"),
        (["--token-ttl", "inf"], "argument --token-ttl: expected a finite number"),
        (["--seed", "10^23"], "argument --seed: expected a whole number, not '10^23'"),
    ],
)
def test_argparse_refuses_numbers_out_of_range(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        parse(*argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_command_prints_where_it_listens_and_never_a_secret(monkeypatch, capsys):
    def fake_serve(app: Any, host: str, port: int, announce: Callable[[str], None]) -> None:
        announce(f"http://{host}:{port}")

    monkeypatch.setattr(receiver_command, "serve", fake_serve)
    monkeypatch.setenv(receiver_command.SECRET_ENV, "env-secret")
    args = parse("--port", "8099", "--client-id", "d1", "--fail-first", "2")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8099/notifications/d1/v2/issuers/{issuerId}/cards" in out
    assert "/authz/d1/v1/oauth2/token" in out and "first 2 call(s) -> 503" in out
    assert "env-secret" not in out


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_command_serves_until_stopped(stop):
    code = (
        "import argparse, signal, sys; from d1sim.simulator.cli import receiver as r\n"
        # An inherited 'ignore SIGINT' (background jobs in some shells) would hide Ctrl-C.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "p = argparse.ArgumentParser(); r.add_parser(p.add_subparsers())\n"
        "a = p.parse_args(['receiver', '--port', '0', '--bearer-token', 'tok'])\n"
        "sys.exit(a.func(a))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("D1SIM_")}
    command = [sys.executable, "-c", code]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            url = proc.stdout.readline().split()[-1]
            answer = httpx.post(
                f"{url}/notifications/d1/v2/issuers/ISSUER0001/cards",
                json=note(op("DATA_PREPARED")),
                headers={"Authorization": "Bearer tok"},
            )
            assert answer.status_code == 204
        finally:
            proc.send_signal(stop)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "stopped" in err and "tok" not in out


@pytest.mark.parametrize("route", [("POST", "/_receiver/reset"), ("GET", "/_receiver/stats")])
def test_control_routes_need_the_receivers_credentials_when_it_has_some(make_receiver, route):
    receiver = make_receiver(bearer_token="s3cret")
    assert receiver.notify(note(op("DATA_PREPARED", "card-1")), {"Authorization": "Bearer s3cret"}).status_code == 204
    method, path = route
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        answer = receiver.http.open(path, method=method, headers=headers)
        assert answer.status_code == 401
        assert "posts" not in answer.get_json()
    assert receiver.probe("card-1") is not None, "a refused reset forgets nothing"
    allowed = receiver.http.open(path, method=method, headers={"Authorization": "Bearer s3cret"})
    assert allowed.status_code in (200, 204)


def test_control_routes_stay_open_on_a_receiver_without_auth(receiver):
    assert receiver.http.post("/_receiver/reset").status_code == 204


def is_problem(answer: Any, status: int) -> bool:
    return (
        answer.status_code == status
        and answer.mimetype == "application/problem+json"
        and answer.get_json()["status"] == status
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "http://evil.example"}, 403),  # a page's cross-origin form or fetch
        ({"Origin": "null"}, 403),  # a sandboxed page
        ({"Host": "rebound.example:8090", "Origin": "http://rebound.example:8090"}, 403),  # DNS rebinding
        ({"Content-Type": "text/plain"}, 415),  # the one body type a page may send without a preflight
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ],
)
def test_a_reset_from_a_web_page_is_refused_and_forgets_nothing(receiver, headers, status):
    assert receiver.notify(note(op("DATA_PREPARED", "card-1"))).status_code == 204
    answer = receiver.http.post("/_receiver/reset", data=b"{}", headers=headers)
    assert is_problem(answer, status), (answer.status_code, answer.data)
    assert receiver.probe("card-1") is not None


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://localhost"}, {"Content-Type": "application/json"},
     {"Host": "127.0.0.1:8090", "Origin": "http://127.0.0.1:8090"}],
)
def test_a_reset_from_this_origin_or_a_non_browser_client_goes_through(receiver, headers):
    assert receiver.notify(note(op("DATA_PREPARED", "card-1"))).status_code == 204
    data = b"{}" if "Content-Type" in headers else None
    assert receiver.http.post("/_receiver/reset", data=data, headers=headers).status_code == 204
    assert receiver.probe("card-1") is None


def test_the_receiver_answers_to_its_public_host(make_receiver):
    receiver = make_receiver(host="0.0.0.0", public_host="receiver.test")
    headers = {"Host": "receiver.test:8090", "Origin": "http://receiver.test:8090"}
    assert receiver.http.post("/_receiver/reset", headers=headers).status_code == 204
    other = {"Host": "other.test:8090"}
    assert is_problem(receiver.http.post("/_receiver/reset", headers=other), 403)


def test_the_webhook_takes_notifications_from_any_origin(receiver):
    foreign = {"Origin": "http://evil.example", "Host": "hooks.example"}
    assert receiver.notify(note(op("DATA_PREPARED", "card-1")), foreign).status_code == 204
    assert receiver.http.get("/_receiver/stats", headers={"Host": "hooks.example"}).status_code == 200


def test_the_receiver_command_passes_its_host_and_public_host(tmp_path):
    args = parse("--host", "0.0.0.0", "--public-host", "receiver.test")
    config = receiver_command.config_from_args(args)
    assert (config.host, config.public_host) == ("0.0.0.0", "receiver.test")


@pytest.mark.parametrize(
    "host, auth, warned",
    [("0.0.0.0", {}, True), ("192.0.2.7", {}, True), ("127.0.0.1", {}, False), ("::1", {}, False),
     ("0.0.0.0", {"bearer_token": "t"}, False), ("0.0.0.0", {"client_id": "c", "client_secret": "s"}, False)],
)
def test_an_unauthenticated_receiver_reachable_from_the_network_is_warned_about(host, auth, warned):
    warning = receiver_command.exposure_warning(host, ReceiverConfig(**auth))
    assert (warning is not None) == warned
    if warned:
        assert host in warning and "--bearer-token" in warning
