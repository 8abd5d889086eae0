"""The mock D1's admin API under hostile input: a 4xx problem for anything, and uploads that
cannot take the server's threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from d1sim.simulator.d1.app import D1Server, create_app
from d1sim.simulator.d1.config import ServerSettings
from d1sim.simulator.d1.uploads import UPLOAD_LIMITS
from d1sim.simulator.web.servers import running_server

ISSUER = "ISSUER0001"
RUNS = f"/_sim/issuers/{ISSUER}/runs"
HUGE = str(10**23)
SHIPPED = (
    "name: many\ndescription: Many updates.\nseed: 1\ncards: {{count: {cards}}}\nsteps:\n"
    + "".join(f"  - status: {s}\n" for s in (
        "CARD_PROD_REQUESTED", "DATA_PREPARED", "CARD_PROD_READY", "CARD_PROD_ONGOING",
        "CARD_PROD_DONE"))
    + "  - status: CARD_SHIPPED\n    every: 1s\n    updates: {updates}\n"
)


def serve(tmp_path: Path, **settings: object) -> Iterator[httpx.Client]:
    server = D1Server(ServerSettings(db_path=str(tmp_path / "d1.db"), plan_workers=0, **settings))
    with server.running(), running_server(create_app(server)) as url, httpx.Client(
        base_url=url, timeout=30
    ) as http:
        answer = http.put(f"/_sim/issuers/{ISSUER}", json={"webhookUrl": "http://127.0.0.1:9/h"})
        assert answer.status_code == 201, answer.text
        yield http


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[httpx.Client]:
    yield from serve(tmp_path, loopback_webhooks=True)


def is_problem(answer: httpx.Response, status: int) -> bool:
    body = answer.json()
    return (
        answer.status_code == status
        and answer.headers["content-type"] == "application/problem+json"
        and body["status"] == status
        and bool(body["detail"])
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", f"/_sim/deliveries/{HUGE}", None, 404),
        ("POST", f"/_sim/deliveries/{HUGE}/resend", None, 404),
        ("GET", f"/_sim/cards?offset={HUGE}", None, 400),
        ("GET", f"/_sim/runs?offset={HUGE}", None, 400),
        ("GET", f"/_sim/runs/x/deliveries?offset={HUGE}", None, 400),
        ("GET", "/_sim/runs/x/deliveries?state=", None, 400),
        ("POST", "/_sim/clock/advance", {"by": ""}, 400),
        ("POST", "/_sim/clock/advance", {"by": 1e300}, 400),
        ("POST", RUNS, {"scenario": "happy-path", "seed": 10**30}, 400),
        ("POST", RUNS, {"yaml": "name: x\ndescription: a\x07b\nseed: 1\nsteps: []\n"}, 400),
        ("POST", RUNS, {"yaml": "name: " + "[" * 50_000 + "]" * 50_000}, 422),
        ("POST", RUNS, {"yaml": SHIPPED.format(cards=1, updates=100_000_000)}, 400),
        ("POST", RUNS, {"yaml": SHIPPED.format(cards=1, updates=30_000)}, 422),
        ("PUT", "/_sim/issuers/ISSUER0002", {"webhookUrl": "http://192.0.2.1/h"}, 403),
        ("PUT", "/_sim/issuers/ISSUER0002", {"timeScale": 0}, 404),
        ("PUT", "/_sim/issuers/ISSUER0002", {"webhookUrl": "http://[::1"}, 403),
        ("DELETE", RUNS, None, 405),
    ],
)
def test_hostile_admin_calls_get_a_4xx_problem(admin, method, path, body, status) -> None:
    answer = admin.request(method, path, json=body)
    assert is_problem(answer, status), (answer.status_code, answer.text)


def test_a_yaml_upload_with_a_control_character_names_its_line(admin) -> None:
    yaml = "name: x\ndescription: a\x07b\nseed: 1\nsteps:\n  - status: CARD_PROD_REQUESTED\n"
    answer = admin.post(RUNS, content=yaml, headers={"content-type": "application/yaml"})
    assert is_problem(answer, 400)
    assert "uploaded scenario:2:15: not valid YAML: character 0x0007" in answer.json()["detail"]


def test_a_run_with_no_body_is_the_issuers_default_scenario(admin) -> None:
    answer = admin.post(RUNS)
    assert answer.status_code == 201 and answer.json()["scenario"] == "happy-path"


def test_a_405_says_which_methods_are_allowed(admin) -> None:
    answer = admin.delete(RUNS)
    assert answer.status_code == 405
    assert sorted(answer.headers["allow"].split(", ")) == ["OPTIONS", "POST"]


def test_webhooks_off_this_machine_are_refused_when_restricted(admin) -> None:
    answer = admin.put("/_sim/issuers/ISSUER0002", json={
        "webhookUrl": "http://127.0.0.1:9/h",
        "auth": {"type": "oauth2", "tokenUrl": "https://idp.example/token", "clientId": "c",
                 "clientSecret": "s"}})
    assert is_problem(answer, 403)
    assert "auth.tokenUrl: this server only sends to loopback addresses" in answer.json()["detail"]
    ok = admin.put("/_sim/issuers/ISSUER0002", json={"webhookUrl": "http://localhost:9/h"})
    assert ok.status_code == 201


@pytest.mark.timeout(60)
def test_nine_heavy_uploads_leave_the_server_answering(tmp_path: Path) -> None:
    # Each upload is within the limits but slower to plan than the budget's 0.2 s.
    heavy = SHIPPED.format(cards=UPLOAD_LIMITS.max_notifications // 996, updates=990)
    for http in serve(tmp_path, plan_slots=2, plan_seconds=0.2):
        answers: list[httpx.Response] = []

        def upload(http: httpx.Client = http, answers: list[httpx.Response] = answers) -> None:
            answers.append(http.post(RUNS, json={"yaml": heavy}))

        uploads = [threading.Thread(target=upload) for _ in range(9)]
        for thread in uploads:
            thread.start()
        began = time.monotonic()
        assert http.get("/_sim").status_code == 200
        answered_in = time.monotonic() - began
        for thread in uploads:
            thread.join(30)
        statuses = sorted(a.status_code for a in answers)
        assert len(statuses) == 9 and set(statuses) <= {422, 429}, statuses
        assert all(is_problem(a, a.status_code) for a in answers)
        busy = [a for a in answers if a.status_code == 429]
        assert all(a.headers["retry-after"].isdigit() for a in busy)
        over_time = [a for a in answers if a.status_code == 422]
        assert over_time and "took more than 0.2 s" in over_time[0].json()["detail"]
        assert answered_in < 5, answered_in
        assert http.get("/_sim/runs").json()["runs"] == []  # no half-planned run was stored
