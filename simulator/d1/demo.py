"""The demo's mock-D1 part: order cards through D1's inbound API, watch their lifecycles arrive.

One card per outcome hook (the ``X-D1Sim-Scenario`` header or an ``SCN-<name>-`` request id);
each order must end with the receiver holding the scenario's last status and ``productionStatus``
agreeing with it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from d1sim.contracts.payloads.inbound import sample_order
from d1sim.contracts.protocol import ADMIN_PREFIX, BANKING_PREFIX, DEFAULT_ISSUER_ID, SCENARIO_HEADER, WEBHOOK_PATH
from d1sim.contracts.scenario.loading import load_bundled
from d1sim.simulator.d1.app import D1Server, create_app
from d1sim.simulator.d1.config import ServerSettings
from d1sim.simulator.reports.results import CaseResult
from d1sim.simulator.web.servers import running_server

ISSUER = DEFAULT_ISSUER_ID
SUITE = "d1sim serve"
HOOK = WEBHOOK_PATH
CARDS = f"{BANKING_PREFIX}/issuers/{ISSUER}/physicalCards"
ORDER = sample_order()
# (card, scenario, how the order names it)
ORDERS = (("demo-card-happy", "happy-path", "header"),
          ("demo-card-exception", "data-exception", "request-id"),
          ("demo-card-canceled", "canceled-in-production", "header"))
DEADLINE = 30.0


@contextmanager
def running_mock_d1(db: Path) -> Iterator[str]:
    """``d1sim serve`` in-process on a free loopback port (planning in-process); yields its URL."""
    with ExitStack() as stack:
        server = stack.enter_context(D1Server(ServerSettings(db_path=str(db), plan_workers=0)).running())
        yield stack.enter_context(running_server(create_app(server)))


def order_cards(receiver_url: str, receiver_auth: dict[str, str], db: Path) -> list[CaseResult]:
    """Register the receiver as ISSUER0001's webhook, order one card per outcome, judge each."""
    with running_mock_d1(db) as url, httpx.Client(base_url=url, timeout=10) as http:
        issuer = {"webhookUrl": receiver_url + HOOK, "timeScale": 0, "auth": receiver_auth}
        http.put(f"{ADMIN_PREFIX}/issuers/{ISSUER}", json=issuer).raise_for_status()
        headers = {"Authorization": f"Bearer {_token(http)}"}
        for card, scenario, how in ORDERS:
            _order(http, headers, card, scenario, how)
        return [_judge(http, headers, receiver_url, card, scenario) for card, scenario, _ in ORDERS]


def _token(http: httpx.Client) -> str:
    cred = http.post(f"{ADMIN_PREFIX}/issuers/{ISSUER}/credentials").raise_for_status().json()
    answer = http.post(f"{BANKING_PREFIX}/oauth2/token", auth=(cred["clientId"], cred["clientSecret"]),
                       data={"grant_type": "client_credentials"})
    return str(answer.raise_for_status().json()["access_token"])


def _order(http: httpx.Client, headers: dict[str, str], card: str, scenario: str, how: str) -> None:
    body: dict[str, Any] = {**ORDER, "issuerRequestId": f"SCN-{scenario}-{card}" if how == "request-id" else card}
    extra = {SCENARIO_HEADER: scenario} if how == "header" else {}
    http.post(f"{CARDS}/{card}/operations:production", json=body, headers={**headers, **extra}).raise_for_status()


def _judge(http: httpx.Client, headers: dict[str, str], receiver_url: str, card: str, scenario: str) -> CaseResult:
    """Wait (bounded) for the receiver to hold the scenario's last status; compare the poll."""
    expected = load_bundled(scenario).path[-1].status
    started, held, polled = time.monotonic(), None, None
    while time.monotonic() - started < DEADLINE:
        held = _held(receiver_url, card)
        polled = _polled(http, headers, card)
        if held == expected == polled:
            return CaseResult(SUITE, f"order {card} ({scenario})", "passed",
                              f"receiver holds {held}; productionStatus agrees", seconds=time.monotonic() - started)
        time.sleep(0.05)
    return CaseResult(SUITE, f"order {card} ({scenario})", "failed",
                      f"after {DEADLINE:g} s: expected {expected}, receiver holds {held}, "
                      f"productionStatus says {polled}")


def _held(receiver_url: str, card: str) -> str | None:
    answer = httpx.get(f"{receiver_url}/cards/{card}", timeout=5)
    return answer.json().get("status") if answer.status_code == 200 else None


def _polled(http: httpx.Client, headers: dict[str, str], card: str) -> str | None:
    operations = http.get(f"{CARDS}/{card}/productionStatus", headers=headers).json().get("operations") or []
    return operations[-1]["details"]["status"] if operations else None
