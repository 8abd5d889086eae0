"""The libcurl workers keep the threaded ones' promises: D1's headers and auth, retries, order.

Each test talks to a real loopback server, since libcurl does its own networking; the threaded
workers, which tests usually drive over ``httpx.MockTransport``, are compared with it on the same
receiver. The bounded-attempt tests (timeout as a whole, body cap) run on both engines in
``test_delivery_limits``.
"""

from __future__ import annotations

import random
import socket
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import orjson
import pytest

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.auth import NoAuth
from d1sim.simulator.delivery.engine import deliver_run
from d1sim.simulator.delivery.libcurl import _retry_after
from d1sim.simulator.delivery.outbox import Outbox
from d1sim.simulator.delivery.retry import RetryPolicy
from d1sim.simulator.delivery.sender import SenderConfig, build_client
from tests.simulator.senders import http_server, one_attempt, stored


def test_the_request_carries_the_body_and_d1s_headers() -> None:
    with http_server(lambda h, seen: (204, {}, b"")) as (url, seen):
        answered = one_attempt(SenderConfig(url), stored(7))
    assert answered.answer.attempt.status_code == 204 and answered.answer.attempt.error is None
    (headers, body), = seen["requests"]
    assert body == stored(7).delivery.body
    assert headers["Content-Type"] == "application/json" and headers["x-correlation-id"] == "corr-7"
    assert "Expect" not in headers  # no 100-continue round trip before a body
    recorded = dict(answered.answer.attempt.request_headers or ())
    assert recorded == {name: headers[name] for name in recorded}  # what was sent, as it was sent
    assert set(headers) <= set(recorded)  # and all of it


def test_retry_after_is_read_from_the_answer() -> None:
    with http_server(lambda h, seen: (429, {"Retry-After": "7"}, b"slow down")) as (url, _):
        answered = one_attempt(SenderConfig(url), stored())
    assert answered.answer.attempt.status_code == 429 and answered.answer.retry_after == "7"
    assert answered.answer.attempt.response == b"slow down"


def test_a_refused_connection_is_said_to_be_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    answered = one_attempt(SenderConfig(f"http://127.0.0.1:{port}/hook"), stored())
    assert answered.answer.refused and answered.answer.attempt.status_code is None
    assert "connection error" in (answered.answer.attempt.error or "")


class RotatingToken(NoAuth):
    """A bearer token fetched again after a 401, as OAuth2 client credentials are."""

    def __init__(self) -> None:
        self.fetched = 0

    def headers(self, client: object) -> dict[str, str]:
        return {"Authorization": f"Bearer token-{self.fetched}"}

    def on_unauthorized(self, rejected: str | None = None) -> bool:
        self.fetched += 1
        return True

    def secrets(self) -> tuple[str, ...]:
        return ()


def test_a_401_is_answered_once_with_a_fresh_token_within_the_attempt() -> None:
    def only_fresh(handler: BaseHTTPRequestHandler, seen: dict) -> tuple[int, dict[str, str], bytes]:
        return (204, {}, b"") if handler.headers["Authorization"] == "Bearer token-1" else (401, {}, b"")

    auth = RotatingToken()
    with http_server(only_fresh) as (url, seen):
        answered = one_attempt(SenderConfig(url, auth=auth), stored())
    assert answered.answer.attempt.status_code == 204
    assert "token fetched again" in (answered.answer.attempt.warning or "")
    assert [h["Authorization"] for h, _ in seen["requests"]] == ["Bearer token-0", "Bearer token-1"]


def test_a_failing_token_endpoint_is_the_attempts_failure() -> None:
    class Down(NoAuth):
        def headers(self, client: object) -> dict[str, str]:
            raise RuntimeError("token endpoint down")

    answered = one_attempt(SenderConfig("http://127.0.0.1:9/hook", auth=Down()), stored())
    assert isinstance(answered.answer.failure, RuntimeError)
    assert "token endpoint down" in (answered.answer.attempt.error or "")


def mixed(handler: BaseHTTPRequestHandler, seen: dict) -> tuple[int, dict[str, str], bytes]:
    """By the delivery's seq: a third fail once with 503, one in seven always 400, the rest 204."""
    seq = orjson.loads(seen["requests"][-1][1])["operations"][0]["seq"]
    tries = sum(1 for _, body in seen["requests"] if orjson.loads(body)["operations"][0]["seq"] == seq)
    if seq % 7 == 0:
        return 400, {}, b'{"error": "no"}'
    if seq % 3 == 0 and tries == 1:
        return 503, {"Retry-After": "0"}, b""
    return 204, {}, b""


@pytest.mark.parametrize("engine", ["libcurl", "threads"])
def test_both_engines_settle_a_run_alike_in_per_key_order(tmp_path: Path, engine: str) -> None:
    deliveries = [Delivery(i, 0.0, orjson.dumps({"operations": [{"seq": i}]}), (f"k{i % 5}",), ("X",),
                           f"corr-{i}", "s", f"k{i % 5}") for i in range(60)]
    with http_server(mixed) as (url, seen), Outbox(tmp_path / "o.db") as box:
        run = box.create_run("s", url, {})
        box.add_deliveries(run, deliveries)
        config = SenderConfig(url, concurrency=4, retry=RetryPolicy(max_attempts=3, base=0.01, cap=0.05))
        with build_client(config) as client:  # injected: the threaded workers over httpx
            summary = deliver_run(box, run, config, client=client if engine == "threads" else None,
                                  rng=random.Random(1))
        states = {d.delivery.seq: d.state for d in box.deliveries(run, limit=100)}
    assert (summary.delivered, summary.dead) == (51, 9)
    assert all(state == ("dead" if seq % 7 == 0 else "delivered") for seq, state in states.items())
    assert summary.attempts == len(seen["requests"]) == 60 + sum(1 for i in range(60) if i % 3 == 0 and i % 7)
    requested = [orjson.loads(body)["operations"][0]["seq"] for _, body in seen["requests"]]
    for key in range(5):  # a key's next delivery goes only once the previous one is settled
        mine = [seq for seq in requested if seq % 5 == key]
        assert mine == sorted(mine)


def test_proxy_variables_of_the_environment_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # As the httpx client (its own transport): D1 reaches the issuer's endpoint directly.
    with socket.create_server(("127.0.0.1", 0)) as closed:
        dead_proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead_proxy)
    with http_server(lambda h, seen: (204, {}, b"")) as (url, seen):
        answered = one_attempt(SenderConfig(url), stored())
    assert answered.answer.attempt.status_code == 204 and len(seen["requests"]) == 1


def test_retry_after_is_the_final_answers_own() -> None:
    interim = b"HTTP/1.1 100 Continue\r\nRetry-After: 99\r\n\r\n"
    final = b"HTTP/1.1 503 Service Unavailable\r\nretry-after:  12 \r\nContent-Length: 0\r\n\r\n"
    assert _retry_after(bytearray(interim + final)) == "12"
    assert _retry_after(bytearray(interim + b"HTTP/1.1 204 No Content\r\n\r\n")) is None
    assert _retry_after(bytearray(b"HTTP/1.1 429 Too Many\r\nX-Retry-After-Hint: 3\r\n\r\n")) is None
