"""Loopback servers and one-attempt helpers shared by the sender's tests (both engines)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.driver import Answered
from d1sim.simulator.delivery.libcurl import CurlWorkers
from d1sim.simulator.delivery.outbox import StoredDelivery
from d1sim.simulator.delivery.sender import Answer, Poster, SenderConfig, build_client

Handler = Callable[[BaseHTTPRequestHandler, dict], tuple[int, dict[str, str], bytes]]
ENGINES = ("threads", "libcurl")

Reply = Callable[[socket.socket], None]  # writes a raw answer on the connection


@contextmanager
def raw_server(answer: Reply) -> Iterator[tuple[str, dict[str, int]]]:
    """A loopback socket server: reads one request per connection, then ``answer`` writes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop, seen = threading.Event(), {"connections": 0}

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            seen["connections"] += 1
            with conn:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                with suppress(OSError):  # the sender hung up: what a bounded attempt does
                    answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook", seen
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def stored(seq: int = 1) -> StoredDelivery:
    body = orjson.dumps({"operations": [{"seq": seq}]})
    return StoredDelivery(seq, "r-1", Delivery(seq, 0.0, body, ("c",), ("DATA_PREPARED",), f"corr-{seq}", "s", "c"))


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


def attempt(engine: str, config: SenderConfig, item: StoredDelivery) -> Answer:
    """One attempt of ``item`` by the threaded workers' Poster (httpx) or by libcurl's workers."""
    if engine == "libcurl":
        return one_attempt(config, item).answer
    with build_client(config) as client:
        return Poster(config, client).attempt(item)


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
