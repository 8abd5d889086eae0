"""In-process access to an integrator's app, WSGI or ASGI, through httpx transports.

httpx calls a WSGI app synchronously (``httpx.WSGITransport``) but an ASGI app only from async
code (``httpx.ASGITransport``). The checker is synchronous, so :class:`SyncAsgiTransport` runs
the ASGI transport on a private event loop in a daemon thread and waits for each answer: one
loop for the app's whole life, as a server would give it.

Example::

    from fastapi import FastAPI
    client = app_client(FastAPI())   # or a Flask app; anything else raises NotAnApp
    client.get("/cards/x").status_code
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any

import httpx

from d1sim.simulator.check.transport import WSGI_BASE, wsgi_client
from d1sim.simulator.errors import UsageError

ANSWER_WAIT = 120.0  # seconds an in-process ASGI answer may take before the call gives up


class NotAnApp(UsageError):
    """What was passed is neither a WSGI nor an ASGI application."""


def app_kind(app: Any) -> str:
    """``"asgi"`` or ``"wsgi"``; raise :class:`NotAnApp` naming what was passed otherwise.

    ASGI apps are called ``app(scope, receive, send)`` and are coroutine functions (or objects
    whose ``__call__`` is one); WSGI apps are plain callables ``app(environ, start_response)``.
    """
    call = getattr(app, "__call__", None)  # noqa: B004 - classes and instances alike
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call):
        return "asgi"
    if callable(app) and not isinstance(app, type | str | bytes):
        params = _parameter_count(app)
        if params == 3:
            return "asgi"  # a plain function returning a coroutine, e.g. a wrapped app
        if params in (2, None):
            return "wsgi"
    raise NotAnApp(
        f"expected a WSGI app (Flask, Django, ...) or an ASGI app (FastAPI, Starlette, ...) or "
        f"a URL, got {_describe(app)}"
    )


def _parameter_count(app: Callable[..., Any]) -> int | None:
    try:
        params = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    return len(params)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}" if len(text) <= 80 else type(value).__name__


class SyncAsgiTransport(httpx.BaseTransport):
    """A synchronous httpx transport over ``httpx.ASGITransport`` on a private event loop."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="d1sim-asgi", daemon=True)
        self._thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Run the request through the app on the loop thread; the answer read in full."""
        content = request.read()
        future = asyncio.run_coroutine_threadsafe(self._call(request, content), self._loop)
        status, headers, body = future.result(timeout=ANSWER_WAIT)
        return httpx.Response(status, headers=headers, content=body, request=request)

    async def _call(self, request: httpx.Request, content: bytes) -> tuple[int, Any, bytes]:
        copy = httpx.Request(request.method, request.url, headers=request.headers, content=content)
        try:
            response = await self._inner.handle_async_request(copy)
            body = await response.aread()
        except Exception as exc:  # the app under test may raise anything: a server answers 500
            return 500, [("content-type", "text/plain")], (
                f"the application raised {type(exc).__name__}: {exc}".encode())
        return response.status_code, response.headers.multi_items(), body

    def close(self) -> None:
        """Cancel the app's background tasks, then stop the loop and its thread."""
        if self._loop.is_running():
            cancelled = asyncio.run_coroutine_threadsafe(_cancel_tasks(), self._loop)
            cancelled.result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()


async def _cancel_tasks() -> None:
    """Cancel every other task on this loop (an app's queue workers) and wait for them."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def app_client(app: Any) -> httpx.Client:
    """An httpx client that calls ``app`` (WSGI or ASGI) in-process at :data:`WSGI_BASE`."""
    if app_kind(app) == "asgi":
        return httpx.Client(transport=SyncAsgiTransport(app), base_url=WSGI_BASE)
    return wsgi_client(app)
