"""Fixtures for the simulator's edges: the reference receiver, in-process or over a real socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from d1sim.simulator.receiver.app import ReceiverConfig, create_app
from d1sim.simulator.web.servers import ServerThread

ISSUER_ID = "ISSUER0001"
WEBHOOK = f"/notifications/d1/v2/issuers/{ISSUER_ID}/cards"


@dataclass
class RunningReceiver:
    """A reference receiver served on 127.0.0.1 by waitress in a background thread."""

    url: str
    config: ReceiverConfig
    app: Flask

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK


class ReceiverClient:
    """An in-process reference receiver (Flask test client) with short helpers."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        self.app = create_app(config)
        self.http = self.app.test_client()

    def notify(
        self, body: Any, headers: Mapping[str, str] | None = None, issuer_id: str = ISSUER_ID
    ) -> TestResponse:
        """POST a notification: ``bytes`` as they are, anything else as JSON."""
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        return self.http.post(
            f"/notifications/d1/v2/issuers/{issuer_id}/cards",
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    def probe(self, card_id: str) -> dict[str, Any] | None:
        """The held state of ``card_id`` (None on 404)."""
        response = self.http.get(f"/cards/{card_id}")
        assert response.status_code in (200, 404), response.data
        return response.get_json() if response.status_code == 200 else None

    def stats(self) -> dict[str, int]:
        token = self.config.bearer_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get("/_receiver/stats", headers=headers).get_json()


@pytest.fixture
def make_receiver() -> Callable[..., ReceiverClient]:
    """Factory: ``make_receiver(**config_fields)`` -> an in-process :class:`ReceiverClient`."""
    return lambda **fields: ReceiverClient(ReceiverConfig(**fields))


@pytest.fixture
def receiver(make_receiver: Callable[..., ReceiverClient]) -> ReceiverClient:
    """An in-process receiver with the default config (no auth, no knobs, in-memory state)."""
    return make_receiver()


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., RunningReceiver]]:
    """Factory: ``start_receiver(config=None)`` serves a receiver on a free port until teardown."""
    with ExitStack() as stack:

        def start(config: ReceiverConfig | None = None) -> RunningReceiver:
            config = config or ReceiverConfig()
            app = create_app(config)
            server = ServerThread(app)
            stack.callback(app.extensions["d1sim.receiver"].store.close)  # runs after stop
            stack.callback(server.stop)
            return RunningReceiver(server.start(), config, app)

        yield start


@pytest.fixture
def reference_receiver(start_receiver: Callable[..., RunningReceiver]) -> RunningReceiver:
    """A default reference receiver over a real socket (``.url``, ``.webhook_url``, ``.app``)."""
    return start_receiver()
