"""Serve an integrator's own app on a loopback port for the duration of a test.

WSGI apps run under waitress (d1sim's own dependency), ASGI apps under uvicorn (the ``asgi``
extra: ``pip install 'd1sim[asgi]'``). The port is chosen by the OS (port 0) and the URL is
yielded only once the server accepts connections.

Example::

    with serving(create_app()) as url:   # Flask, Django, FastAPI, Starlette...
        httpx.get(url + "/cards/x")
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from d1sim.simulator.check.apps import app_kind
from d1sim.simulator.errors import UsageError
from d1sim.simulator.web.servers import running_server, wait_until_accepting

HOST = "127.0.0.1"
START_WAIT = 10.0  # seconds a server may take to accept connections


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` (WSGI or ASGI) on 127.0.0.1, a free port; yield its base URL."""
    if app_kind(app) == "wsgi":
        with running_server(app, HOST, 0) as url:
            yield url
        return
    with _uvicorn(app) as url:
        yield url


@contextmanager
def _uvicorn(app: Any) -> Iterator[str]:
    try:
        import uvicorn
    except ImportError:
        raise UsageError(
            "serving an ASGI app needs uvicorn: pip install 'd1sim[asgi]' (or uvicorn itself)"
        ) from None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="auto", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"d1sim-uvicorn-{port}")
    thread.start()
    try:
        wait_until_accepting(HOST, port, START_WAIT)
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_WAIT)
        sock.close()
