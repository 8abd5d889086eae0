"""The mock D1's admin API under hostile input: a 4xx problem for anything, and uploads that
cannot take the server's threads: they are planned as jobs, off the request threads, within a
budget of time and size."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from d1sim.simulator.d1.admin import MAX_SEED, MAX_YAML_CHARACTERS
from d1sim.simulator.d1.app import D1Server, create_app
from d1sim.simulator.d1.config import ServerSettings, bundled_names
from d1sim.simulator.d1.uploads import UPLOAD_LIMITS
from d1sim.simulator.web.servers import running_server
from tests.simulator.d1_support import wait_for

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


# One lane of many cards, each operation with a thousand extra fields: the expansion plans the
# whole lane before its first delivery, so its own look at the clock comes minutes too late.
RUNAWAY = (
    "name: runaway\ndescription: One lane planned whole.\nseed: 1\ncards: {count: 50}\n"
    "batching: {max: 10000}\nsteps:\n  - status: CARD_PROD_REQUESTED\n"
    "  - {status: CARD_SHIPPED, every: 1s, updates: 990}\n"
    "faults:\n  - {kind: unknown_fields, fields: 1000}\n"
)
SMALL = "name: small\ndescription: One card.\nseed: 1\nsteps:\n  - status: CARD_PROD_REQUESTED\n"


def serve(tmp_path: Path, **settings: object) -> Iterator[httpx.Client]:
    settings = {"plan_workers": 0, **settings}
    server = D1Server(ServerSettings(db_path=str(tmp_path / "d1.db"), **settings))
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


def finished(http: httpx.Client, accepted: httpx.Response, timeout: float = 30) -> dict:
    """The job of an accepted run once it is planned or failed."""
    assert accepted.status_code == 202, accepted.text
    location = accepted.headers["location"]

    def done() -> dict | None:
        job = http.get(location).json()
        return job if job["state"] != "planning" else None

    return wait_for(done, timeout, what=f"job {location}")


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
        ("POST", RUNS, {"scenario": "no-such-scenario"}, 400),
        ("POST", RUNS, {"yaml": 42}, 400),
        ("POST", RUNS, {"yaml": "x" * (UPLOAD_LIMITS.max_bytes + 1)}, 422),
        ("PUT", "/_sim/issuers/ISSUER0002", {"webhookUrl": "http://192.0.2.1/h"}, 403),
        ("PUT", "/_sim/issuers/ISSUER0002", {"timeScale": 0}, 404),
        ("PUT", "/_sim/issuers/ISSUER0002", {"webhookUrl": "http://[::1"}, 403),
        ("DELETE", RUNS, None, 405),
    ],
)
def test_hostile_admin_calls_get_a_4xx_problem(admin, method, path, body, status) -> None:
    answer = admin.request(method, path, json=body)
    assert is_problem(answer, status), (answer.status_code, answer.text)


@pytest.mark.parametrize(
    ("yaml", "status"),
    [
        ("name: x\ndescription: a\x07b\nseed: 1\nsteps: []\n", 400),
        ("name: " + "[" * 30_000 + "]" * 30_000, 422),
        (SHIPPED.format(cards=1, updates=100_000_000), 400),
        (SHIPPED.format(cards=1, updates=30_000), 422),
        ("é" * (UPLOAD_LIMITS.max_bytes // 2 + 1), 422),  # within the characters, over the bytes
    ],
)
def test_a_hostile_upload_is_accepted_and_its_job_fails_with_a_problem(admin, yaml, status) -> None:
    job = finished(admin, admin.post(RUNS, json={"yaml": yaml}))
    assert job["state"] == "failed" and job["runId"] is None
    assert job["problem"]["status"] == status and job["problem"]["detail"], job


def test_a_yaml_upload_with_a_control_character_names_its_line(admin) -> None:
    yaml = "name: x\ndescription: a\x07b\nseed: 1\nsteps:\n  - status: CARD_PROD_REQUESTED\n"
    answer = admin.post(RUNS, content=yaml, headers={"content-type": "application/yaml"})
    problem = finished(admin, answer)["problem"]
    assert problem["status"] == 400
    assert "uploaded scenario:2:15: not valid YAML: character 0x0007" in problem["detail"]


def test_a_run_with_no_body_is_the_issuers_default_scenario(admin) -> None:
    job = finished(admin, admin.post(RUNS))
    assert job["state"] == "planned" and job["scenario"] == "happy-path" and job["deliveries"] > 0
    assert admin.get(f"/_sim/runs/{job['runId']}").json()["scenario"] == "happy-path"


def test_an_unknown_job_is_a_404_problem(admin) -> None:
    assert is_problem(admin.get("/_sim/jobs/j-000000000000"), 404)


def test_the_published_run_body_says_what_the_server_checks(admin) -> None:
    media = admin.get("/openapi.json").json()["paths"][RUNS.replace(ISSUER, "{issuerId}")]["post"]
    body = media["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert body["yaml"]["maxLength"] == MAX_YAML_CHARACTERS
    assert body["seed"]["maximum"] == MAX_SEED
    assert body["scenario"]["enum"] == list(bundled_names())


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


def accepted_and_busy(http: httpx.Client, body: dict, count: int) -> list[httpx.Response]:
    """``count`` uploads of ``body`` sent at once, with their answers."""
    answers: list[httpx.Response] = []

    def upload() -> None:
        answers.append(http.post(RUNS, json=body, timeout=10))  # a request thread answers at once

    uploads = [threading.Thread(target=upload) for _ in range(count)]
    for thread in uploads:
        thread.start()
    assert http.get("/_sim", timeout=10).status_code == 200  # answered while they are planned
    for thread in uploads:
        thread.join(30)
    statuses = sorted(a.status_code for a in answers)
    assert len(statuses) == count and set(statuses) <= {202, 429}, statuses
    busy = [a for a in answers if a.status_code == 429]
    assert all(is_problem(a, 429) and a.headers["retry-after"].isdigit() for a in busy)
    return [a for a in answers if a.status_code == 202]


@pytest.mark.timeout(60)
def test_nine_heavy_uploads_leave_the_server_answering(tmp_path: Path) -> None:
    # Each upload is within the limits but slower to plan than the budget's 0.2 s.
    heavy = SHIPPED.format(cards=UPLOAD_LIMITS.max_notifications // 996, updates=990)
    for http in serve(tmp_path, plan_slots=2, plan_seconds=0.2):
        accepted = accepted_and_busy(http, {"yaml": heavy}, 9)
        assert 1 <= len(accepted) <= 2
        problems = [finished(http, a)["problem"] for a in accepted]
        assert all(p["status"] == 422 and "took more than 0.2 s" in p["detail"] for p in problems), problems
        assert http.get("/_sim/runs").json()["runs"] == []  # no half-planned run was stored


@pytest.mark.timeout(120)
def test_runaway_expansions_are_killed_and_never_hold_a_request_thread(tmp_path: Path) -> None:
    # 300 bytes that would keep a planner busy for minutes before its first delivery.
    for http in serve(tmp_path, plan_workers=1, plan_slots=2, plan_seconds=1):
        accepted = accepted_and_busy(http, {"yaml": RUNAWAY}, 9)
        assert 1 <= len(accepted) <= 2
        for answer in accepted:
            assert http.get(answer.headers["location"], timeout=10).json()["state"] == "planning"
        problems = [finished(http, a, timeout=60)["problem"] for a in accepted]
        assert all(p["status"] == 422 and "took more than 1 s and was stopped" in p["detail"] for p in problems)
        assert http.get("/_sim/runs").json()["runs"] == []
        # The killed planners' slots are free again, with new planning processes.
        job = finished(http, http.post(RUNS, json={"yaml": SMALL}), timeout=60)
        assert job["state"] == "planned" and job["deliveries"] == 1, job
