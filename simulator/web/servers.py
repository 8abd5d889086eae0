"""Run d1sim's WSGI apps (receiver, mock D1) with waitress: in the foreground, or in a thread.

Example::

    >>> import httpx
    >>> from d1sim.simulator.receiver.app import create_app
    >>> with running_server(create_app()) as url:
    ...     httpx.get(f"{url}/_receiver/stats").json()["posts"]
    0
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from waitress import create_server, wasyncore

from d1sim.simulator.web.connections import DEFAULT_LIMITS, ConnectionLimits, connection_limits, guard_channels

# 'Task queue depth is N' is waitress thinking aloud under a burst; it is no error of ours.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)

WSGIApp = Callable[..., Any]
THREADS = 8


def _create(
    app: WSGIApp, host: str, port: int, threads: int, socket_map: dict[int, Any], limits: ConnectionLimits
) -> Any:
    """A waitress server with d1sim's connection limits and slow-client deadline."""
    adjustments = connection_limits(limits)
    server = create_server(app, map=socket_map, host=host, port=port, threads=threads, **adjustments)
    guard_channels(socket_map, limits)
    return server


def base_url(host: str, port: int) -> str:
    """``http://host:port``, with brackets around an IPv6 address."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    app: WSGIApp,
    host: str = "127.0.0.1",
    port: int = 8090,
    *,
    announce: Callable[[str], None] | None = None,
    threads: int = THREADS,
    limits: ConnectionLimits = DEFAULT_LIMITS,
) -> None:
    """Serve ``app`` until Ctrl-C or SIGTERM, then return; ``announce`` gets the base URL.

    The URL is announced after the socket is bound, so ``port=0`` reports the real port.
    ``limits`` bounds connections and slow clients (:mod:`d1sim.simulator.web.connections`).
    Raises OSError when the address cannot be bound (e.g. the port is in use).
    """
    server = _create(app, host, port, threads, {}, limits)
    previous = _stop_on_sigterm()
    try:
        if announce:
            announce(base_url(host, server.effective_port))
        server.run()  # returns after shutting the worker threads down on KeyboardInterrupt
    finally:
        server.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> Any:
    """Make SIGTERM (docker stop, systemd, kill) stop a server as cleanly as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        return None  # signal handlers can only be set from the main thread
    return signal.signal(signal.SIGTERM, _interrupt)


class ServerThread:
    """A waitress server in a background thread; ``start`` returns once it accepts connections.

    The server is bound in the constructor, so ``url`` (with the real port for ``port=0``) is
    known before ``start``.
    """

    def __init__(
        self,
        app: WSGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        threads: int = THREADS,
        limits: ConnectionLimits = DEFAULT_LIMITS,
    ) -> None:
        # Our own socket map: the loop runs on it, and stop() can end it without private access.
        self._map: dict[int, Any] = {}
        self._server = _create(app, host, port, threads, self._map, limits)
        self.host, self.port = host, int(self._server.effective_port)
        self.url = base_url(host, self.port)
        self._stopping = threading.Event()
        # The loop closes the trigger on its way out; stop() must not pull it after that (EBADF,
        # or a write into whatever file reuses the descriptor).
        self._closing = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(
            target=self._loop, name=f"d1sim-server-{self.port}", daemon=True
        )

    def _loop(self) -> None:
        adj = self._server.adj
        try:
            while not self._stopping.is_set() and self._map:
                wasyncore.loop(
                    timeout=adj.asyncore_loop_timeout,
                    map=self._map,
                    use_poll=adj.asyncore_use_poll,
                    count=1,
                )
        finally:
            self._server.task_dispatcher.shutdown()
            with self._closing:
                # Closes the listening socket (server.close()), the trigger and any open connection.
                wasyncore.close_all(self._map)
                self._closed = True

    def start(self, timeout: float = 5.0) -> str:
        """Start serving; return the base URL once a TCP connection succeeds.

        Raises:
            TimeoutError: the server did not accept a connection within ``timeout`` seconds.
        """
        self._thread.start()
        wait_until_accepting(self.host, self.port, timeout)
        return self.url

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close every socket; waits up to ``timeout`` for the thread."""
        self._stopping.set()
        if self._thread.is_alive():
            with self._closing:
                if not self._closed:  # the loop may have seen _stopping and closed up already
                    self._server.pull_trigger()  # wake the poll now instead of after its timeout
            self._thread.join(timeout)
        else:
            wasyncore.close_all(self._map)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def wait_until_accepting(host: str, port: int, timeout: float = 5.0) -> None:
    """Poll ``host:port`` until a TCP connection succeeds; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            with socket.create_connection(
                (host, port), timeout=max(0.05, deadline - time.monotonic())
            ):
                return
        except OSError as exc:
            if time.monotonic() + delay > deadline:
                raise TimeoutError(
                    f"nothing accepts connections on {host}:{port} after {timeout} s"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.2)  # back off: quick when ready soon, cheap when slow


@contextmanager
def running_server(
    app: WSGIApp, host: str = "127.0.0.1", port: int = 0, limits: ConnectionLimits = DEFAULT_LIMITS
) -> Iterator[str]:
    """Serve ``app`` in a background thread for the ``with`` block; yield its base URL.

    Binds port 0 (a free port) by default, waits until it accepts connections, and closes the
    server on exit, also when the block raises.
    """
    server = ServerThread(app, host, port, limits=limits)
    try:
        yield server.start()
    finally:
        server.stop()
