"""d1sim's servers stay up under many idle and slow clients, and cut the ones that never finish."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from d1sim.simulator.receiver import create_app
from d1sim.simulator.web import servers
from d1sim.simulator.web.connections import ConnectionLimits, connection_limits
from d1sim.simulator.web.servers import ServerThread, running_server
from tests.simulator.d1_support import mock_d1

SLOW_CLIENTS = 200
HEADER = b"GET /_receiver/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 64


@contextmanager
def open_sockets(url: str, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connected client sockets to ``url``, closed at the end of the block."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.create_connection((host, int(port)), timeout=5)) for _ in range(count)]
        yield sockets


def still_open(sock: socket.socket) -> bool:
    """True while the server has not closed ``sock`` (nothing to read, no EOF)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (sending ``trickle`` a byte at a time)."""
    deadline = time.monotonic() + seconds
    for byte in (trickle * 1000)[:1000] or [None] * 1000:
        if time.monotonic() > deadline:
            return False
        try:
            if byte is not None:
                sock.sendall(bytes([byte]))
        except OSError:
            return True
        if not still_open(sock):
            return True
        time.sleep(0.1)
    return False


def test_limits_raise_waitress_defaults() -> None:
    adjustments = connection_limits()
    assert adjustments["connection_limit"] > 100
    assert adjustments["channel_timeout"] < 120


@pytest.mark.parametrize("which", ["receiver", "mock D1"])
def test_a_normal_request_is_served_while_200_slow_clients_trickle(which: str, tmp_path: Path) -> None:
    with ExitStack() as stack:
        if which == "receiver":
            url, path = stack.enter_context(running_server(create_app())), "/_receiver/stats"
        else:
            url, path = stack.enter_context(mock_d1(tmp_path)).url, "/_sim/scenarios"
        slow = stack.enter_context(open_sockets(url, SLOW_CLIENTS))
        for offset in range(3):  # every slow client sends its header a byte at a time
            for sock in slow:
                sock.sendall(HEADER[offset : offset + 1])
            answer = httpx.get(url + path, timeout=5)
            assert answer.status_code == 200
        assert all(still_open(sock) for sock in slow), "slow clients are held, not dropped"


def test_a_client_trickling_its_headers_is_cut_at_the_request_deadline() -> None:
    limits = ConnectionLimits(request_deadline=1, idle_timeout=30)
    with running_server(create_app(), limits=limits) as url, open_sockets(url, 1) as (sock,):
        assert closed_within(sock, 6, trickle=HEADER)
        assert httpx.get(url + "/_receiver/stats", timeout=5).status_code == 200


def test_an_idle_client_is_closed_after_the_idle_timeout() -> None:
    limits = ConnectionLimits(idle_timeout=1, cleanup_interval=1)
    with running_server(create_app(), limits=limits) as url, open_sockets(url, 1) as (sock,):
        assert closed_within(sock, 6)


def test_a_complete_slow_request_within_the_deadline_is_answered() -> None:
    limits = ConnectionLimits(request_deadline=5)
    request = b"GET /_receiver/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with running_server(create_app(), limits=limits) as url, open_sockets(url, 1) as (sock,):
        for chunk in (request[:10], request[10:30], request[30:]):
            sock.sendall(chunk)
            time.sleep(0.2)
        assert sock.recv(100).startswith(b"HTTP/1.1 200")


def test_stop_never_pulls_a_trigger_the_loop_already_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The race behind a flaky 'OSError: Bad file descriptor' in stop(): the loop sees the stop
    flag and closes everything (the trigger too) while stop() is about to wake it."""
    closed, resume = threading.Event(), threading.Event()
    close_all = servers.wasyncore.close_all

    def close_then_linger(socket_map: dict[int, Any]) -> None:
        close_all(socket_map)
        closed.set()
        resume.wait(5)  # the thread is still alive, its trigger gone

    server = ServerThread(create_app())
    server.start()
    monkeypatch.setattr(servers.wasyncore, "close_all", close_then_linger)
    server._stopping.set()  # as stop() does first; the loop notices within its poll timeout
    assert closed.wait(10)
    threading.Timer(0.2, resume.set).start()
    server.stop()  # before the fix: pull_trigger() on the closed descriptor
