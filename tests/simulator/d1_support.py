"""Helpers for the mock D1 server's tests: an in-process server beside a reference receiver,
an HTTP client with short verbs, bounded polling, and ``d1sim serve`` as a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from d1sim.contracts.payloads.inbound import sample_order
from d1sim.simulator.d1.app import D1Server, create_app
from d1sim.simulator.d1.config import ServerSettings
from d1sim.simulator.receiver.app import ReceiverConfig
from d1sim.simulator.receiver.app import create_app as receiver_app
from d1sim.simulator.web.servers import running_server

ISSUER = "ISSUER0001"
OTHER = "ISSUER0002"
HOOK = "/notifications/d1/v2/issuers/{issuerId}/cards"
CARDS = "/banking/v1/issuers/{issuer}/physicalCards"
ORDER = sample_order()
DEADLINE = 20.0

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = DEADLINE, what: str = "it") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline, delay = time.monotonic() + timeout, 0.01
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


@dataclass
class MockD1:
    """A mock D1 on a real socket, with a client and the receiver it notifies."""

    url: str
    receiver_url: str
    server: D1Server | None
    http: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)
    receiver_auth: dict[str, str] = field(default_factory=dict)  # for the receiver's control routes

    def register(self, issuer_id: str = ISSUER, **settings: Any) -> httpx.Response:
        body = {"webhookUrl": self.receiver_url + HOOK, "timeScale": 0, **settings}
        answer = self.http.put(f"/_sim/issuers/{issuer_id}", json=body)
        assert answer.status_code in (200, 201), answer.text
        return answer

    def token(self, issuer_id: str = ISSUER) -> str:
        if issuer_id not in self.tokens:
            cred = self.http.post(f"/_sim/issuers/{issuer_id}/credentials").json()
            answer = self.http.post(
                "/banking/v1/oauth2/token",
                auth=(cred["clientId"], cred["clientSecret"]),
                data={"grant_type": "client_credentials"},
            )
            self.tokens[issuer_id] = answer.json()["access_token"]
        return self.tokens[issuer_id]

    def auth(self, issuer_id: str = ISSUER) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(issuer_id)}"}

    def order(
        self,
        card_id: str,
        body: Any = None,
        issuer_id: str = ISSUER,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.http.post(
            f"{CARDS.format(issuer=issuer_id)}/{card_id}/operations:production",
            json=ORDER if body is None else body,
            headers={**self.auth(issuer_id), **(headers or {})},
        )

    def status(self, card_id: str, issuer_id: str = ISSUER) -> httpx.Response:
        return self.http.get(
            f"{CARDS.format(issuer=issuer_id)}/{card_id}/productionStatus",
            headers=self.auth(issuer_id),
        )

    def cancel(self, card_id: str, issuer_id: str = ISSUER) -> httpx.Response:
        return self.http.post(
            f"{CARDS.format(issuer=issuer_id)}/{card_id}/operations:cancelProduction",
            headers=self.auth(issuer_id),
        )

    def probe(self, card_id: str) -> dict[str, Any] | None:
        answer = httpx.get(f"{self.receiver_url}/cards/{card_id}")
        return answer.json() if answer.status_code == 200 else None

    def held(self, card_id: str) -> str | None:
        state = self.probe(card_id)
        return state["status"] if state else None

    def wait_held(self, card_id: str, status: str, timeout: float = DEADLINE) -> dict[str, Any]:
        """Wait until the receiver holds ``status`` for the card and nothing more is owed."""
        wait_for(lambda: self.held(card_id) == status, timeout, f"{card_id} to reach {status}")
        return wait_for(lambda: self.settled(), timeout, "the dispatcher to settle")

    def settled(self) -> dict[str, Any] | None:
        """The admin index once nothing is being planned or sent, else None."""
        index = self.http.get("/_sim").json()
        quiet = index["planning"] == 0 and index["dispatcher"]["inFlight"] == 0
        return index if quiet and index["dispatcher"]["lanes"] == 0 else None

    def receiver_stats(self) -> dict[str, int]:
        return httpx.get(f"{self.receiver_url}/_receiver/stats", headers=self.receiver_auth).json()


@contextmanager
def mock_d1(
    tmp_path: Path,
    receiver: ReceiverConfig | None = None,
    admin_token: str | None = None,
    plan_workers: int = 0,
) -> Iterator[MockD1]:
    """A reference receiver and a mock D1 (in-process, real sockets) until the block ends.

    Planning is in-process unless ``plan_workers`` (a planning process costs a second to start).
    """
    with ExitStack() as stack:
        receiver_url = stack.enter_context(running_server(receiver_app(receiver or ReceiverConfig())))
        settings = ServerSettings(db_path=str(tmp_path / "d1.db"), admin_token=admin_token, plan_workers=plan_workers)
        server = D1Server(settings)
        stack.enter_context(server.running())
        url = stack.enter_context(running_server(create_app(server)))
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        http = stack.enter_context(httpx.Client(base_url=url, headers=headers, timeout=10))
        yield MockD1(url, receiver_url, server, http, receiver_auth=control_auth(receiver_url, receiver))


def control_auth(receiver_url: str, config: ReceiverConfig | None) -> dict[str, str]:
    """The Authorization header a receiver with ``config`` wants on its control routes."""
    if config is None or not config.auth_required:
        return {}
    token = config.bearer_token
    if token is None:
        answer = httpx.post(
            receiver_url + "/authz/d1/v1/oauth2/token",
            auth=(config.client_id or "", config.client_secret or ""),
            data={"grant_type": "client_credentials"},
        )
        token = answer.json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def serve_command() -> list[str]:
    """``d1sim serve`` as a subprocess argv."""
    return [sys.executable, "-m", "d1sim", "serve"]


class ServeProcess:
    """``d1sim serve --port 0`` in a subprocess; ``url`` is read from its first line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [*serve_command(), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()  # blocks until the banner (or the process ends)
        match = re.search(r"listening on (http://\S+)", first)
        if match is None:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"d1sim serve did not start: {first!r} {err}")
        self.url = match.group(1)
        self.banner = first + "".join(self.proc.stdout.readline() for _ in range(4))

    def stop(self) -> tuple[str, str]:
        """SIGTERM, wait (bounded), return the rest of stdout and stderr."""
        self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
        return self.banner + out, err
