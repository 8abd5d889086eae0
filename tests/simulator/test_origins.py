"""A web page cannot write to the loopback admin API: Host, Origin and content type are checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient

from d1sim.simulator.d1.app import D1Server, create_app
from d1sim.simulator.d1.config import ServerSettings
from d1sim.simulator.web.origins import OriginGuard, protect

ISSUER = "ISSUER0001"
LOCAL = "http://127.0.0.1:8080"
EVIL = "http://evil.example"
SCENARIO = "name: tiny\ndescription: one card\nseed: 1\ncards: [t-1]\nsteps:\n  - status: CARD_PROD_REQUESTED\n"


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[FlaskClient]:
    settings = ServerSettings(db_path=str(tmp_path / "d1.db"), plan_workers=0, public_host="d1sim.example.test")
    server = D1Server(settings, [{"issuerId": ISSUER, "webhookUrl": "http://127.0.0.1:9/hook"}])
    with server.running():
        app = create_app(server)
        app.add_url_rule("/_sim/mounted-later", "later", lambda: ("", 204), methods=["POST"])
        yield app.test_client()


def runs(client: FlaskClient) -> int:
    return len(client.get("/_sim/runs", base_url=LOCAL).json["runs"])


def test_a_text_plain_post_from_a_foreign_page_is_refused_and_changes_nothing(admin: FlaskClient) -> None:
    for path in (f"/_sim/issuers/{ISSUER}/runs", "/_sim/clock/advance", f"/_sim/issuers/{ISSUER}/credentials"):
        answer = admin.post(
            path,
            data='{"scenario": "happy-path", "by": "1d"}',
            content_type="text/plain",
            base_url=EVIL,
            headers={"Origin": EVIL},
        )
        assert answer.status_code == 403, path
        assert answer.content_type == "application/problem+json"
        assert "evil.example" in answer.json["detail"]
    assert runs(admin) == 0


def test_a_write_must_say_it_is_json(admin: FlaskClient) -> None:
    admin.post(f"/_sim/issuers/{ISSUER}/pause", base_url=LOCAL)  # a paused clock stands still
    before = admin.get(f"/_sim/issuers/{ISSUER}", base_url=LOCAL).json["virtualNow"]
    answer = admin.post("/_sim/clock/advance", data='{"by": "1d"}', content_type="text/plain", base_url=LOCAL)
    assert answer.status_code == 415
    assert "application/json" in answer.json["detail"]
    assert admin.get(f"/_sim/issuers/{ISSUER}", base_url=LOCAL).json["virtualNow"] == before
    moved = admin.post("/_sim/clock/advance", json={"by": "1d"}, base_url=LOCAL)
    assert moved.status_code == 200


def test_a_write_from_another_origin_is_refused_even_as_json(admin: FlaskClient) -> None:
    for origin in (EVIL, "http://127.0.0.1:3000", "null", "http://[::1"):
        answer = admin.post("/_sim/clock/advance", json={"by": "1d"}, base_url=LOCAL, headers={"Origin": origin})
        assert answer.status_code == 403, origin


def test_a_same_origin_write_from_a_browser_goes_through(admin: FlaskClient) -> None:
    answer = admin.post("/_sim/clock/advance", json={"by": "1d"}, base_url=LOCAL, headers={"Origin": LOCAL})
    assert answer.status_code == 200


def test_a_rebinding_host_name_is_refused_even_for_reads(admin: FlaskClient) -> None:
    assert admin.get("/_sim/issuers", base_url=EVIL).status_code == 403
    for host in ("http://localhost:8080", "http://[::1]:8080", "http://10.1.2.3", "http://d1sim.example.test"):
        assert admin.get("/_sim/issuers", base_url=host).status_code == 200, host


def test_a_yaml_upload_needs_its_own_content_type_and_only_where_taken(admin: FlaskClient) -> None:
    path = f"/_sim/issuers/{ISSUER}/runs"
    assert admin.post(path, data=SCENARIO, content_type="text/plain", base_url=LOCAL).status_code == 415
    assert admin.post(path, data=SCENARIO, content_type="application/yaml", base_url=LOCAL).status_code == 202
    issuer = admin.put(f"/_sim/issuers/{ISSUER}", data="timeScale: 2", content_type="application/yaml", base_url=LOCAL)
    assert issuer.status_code == 415


def test_a_write_without_a_body_needs_no_content_type(admin: FlaskClient) -> None:
    assert admin.post(f"/_sim/issuers/{ISSUER}/pause", base_url=LOCAL).status_code == 200


def test_routes_mounted_later_under_the_admin_prefix_are_guarded(admin: FlaskClient) -> None:
    assert admin.post("/_sim/mounted-later", data="x", content_type="text/plain", base_url=LOCAL).status_code == 415
    assert admin.post("/_sim/mounted-later", base_url=LOCAL, headers={"Origin": EVIL}).status_code == 403
    assert admin.post("/_sim/mounted-later", base_url=LOCAL).status_code == 204


def test_the_guard_protects_a_blueprint() -> None:
    ui = Blueprint("ui", __name__)
    ui.add_url_rule("/ui/act", "act", lambda: ("", 204), methods=["POST"])
    protect(ui, OriginGuard(bound_host="127.0.0.1"))
    app = Flask("t")
    app.register_blueprint(ui)
    app.add_url_rule("/other", "other", lambda: ("", 204), methods=["POST"])
    client = app.test_client()
    assert client.post("/ui/act", data="x", content_type="text/plain", base_url=LOCAL).status_code == 415
    assert client.post("/ui/act", json={}, base_url=LOCAL).status_code == 204
    assert client.post("/other", data="x", content_type="text/plain", base_url=EVIL).status_code == 204


def test_the_bound_and_public_hosts_are_known_but_wildcards_add_nothing() -> None:
    guard = OriginGuard(bound_host="d1.internal", public_host="D1sim.Example.Test")
    assert guard.known_host("d1.internal") and guard.known_host("d1sim.example.test")
    assert guard.known_host("app.localhost") and not guard.known_host("evil.example")
    assert not OriginGuard(bound_host="0.0.0.0").known_host("evil.example")
