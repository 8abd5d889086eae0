"""The libcurl workers keep every promise of the threaded ones: bounded attempts, D1's auth, order.

Each test talks to a real loopback server, since libcurl does its own networking; the threaded
workers, which tests usually drive over ``httpx.MockTransport``, are compared with it on the same
receiver.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.auth import NoAuth
from d1sim.simulator.delivery.driver import Answered
from d1sim.simulator.delivery.engine import deliver_run
from d1sim.simulator.delivery.libcurl import CurlWorkers
from d1sim.simulator.delivery.outbox import RESPONSE_EXCERPT, Outbox, StoredDelivery
from d1sim.simulator.delivery.retry import RetryPolicy
from d1sim.simulator.delivery.sender import BODY_CAP, Poster, SenderConfig, build_client

Handler = Callable[[BaseHTTPRequestHandler, dict], tuple[int, dict[str, str], bytes]]


def stored(seq: int = 1, key: str = "c") -> StoredDelivery:
    body = orjson.dumps({"operations": [{"seq": seq}]})
    return StoredDelivery(seq, "r-1", Delivery(seq, 0.0, body, (key,), ("DATA_PREPARED",), f"corr-{seq}", "s", key))


def one_attempt(config: SenderConfig, item: StoredDelivery, limit: float = 15.0) -> Answered:
    """Submit one delivery to fresh libcurl workers and wait (bounded) for its answer."""
    with build_client(config) as client:
        workers = CurlWorkers(config, Poster(config, client))
        try:
            workers.submit(item)
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                if answers := workers.collect(0.5):
                    assert len(answers) == 1
                    return answers[0]
            raise AssertionError("no answer in time")
        finally:
            workers.stop()


@contextmanager
def http_server(handle: Handler) -> Iterator[tuple[str, dict]]:
    """A threaded loopback HTTP/1.1 server (keep-alive) whose answers ``handle`` decides."""
    seen: dict = {"requests": [], "connections": set()}

    class Reply(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen["requests"].append((dict(self.headers), body))
            seen["connections"].add(self.client_address)
            status, headers, answer = handle(self, seen)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(answer))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Reply)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                with suppress(OSError):
                    answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join(10)
        listener.close()


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


def test_a_trickling_receiver_cannot_hold_an_attempt_beyond_the_timeout() -> None:
    def trickle(conn: socket.socket) -> None:
        for byte in b"HTTP/1.1 204 No Content\r\nX-Slow: " + b"a" * 200:  # one byte each 0.25 s
            conn.sendall(bytes([byte]))
            time.sleep(0.25)

    with raw_server(trickle) as url:
        started = time.monotonic()
        answered = one_attempt(SenderConfig(url, timeout=1.0), stored())
        took = time.monotonic() - started
    attempt = answered.answer.attempt
    assert attempt.status_code is None and "timeout after 1 s" in (attempt.error or "")
    assert took < 3.0


def test_an_answer_body_is_read_only_up_to_the_cap() -> None:
    sent = {"bytes": 0}
    total = 64 * 1024 * 1024

    def flood(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        chunk = b"x" * 65536
        while sent["bytes"] < total:
            conn.sendall(chunk)
            sent["bytes"] += len(chunk)

    with raw_server(flood) as url:
        answered = one_attempt(SenderConfig(url, timeout=10.0), stored())
    attempt = answered.answer.attempt
    assert attempt.status_code == 200 and len(attempt.response) == RESPONSE_EXCERPT
    assert f"over {BODY_CAP // 1024} KiB" in (attempt.warning or "")
    assert sent["bytes"] < total // 4  # the rest was never read: the connection was closed


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
