"""One line per request from d1sim's servers: text for people, JSON for machines, or none."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from flask import Flask

from d1sim.simulator.web.request_log import add_request_log
from tests.simulator.d1_support import ISSUER, ServeProcess


def _app(fmt: str) -> tuple[Flask, io.StringIO]:
    app, out = Flask("hook"), io.StringIO()
    app.add_url_rule("/hook", "hook", lambda: ("", 204), methods=["POST"])
    app.add_url_rule("/missing", "missing", lambda: ("no", 404))
    add_request_log(app, fmt, out)
    return app, out


BULK = {"operations": [{"cardId": f"c{i % 12}", "details": {"status": "CARD_SHIPPED"}} for i in range(24)]}


def test_text_lines_name_the_request_its_answer_and_the_notifications_cards() -> None:
    app, out = _app("text")
    client = app.test_client()
    client.post("/hook", json=BULK, headers={"x-correlation-id": "corr-7"})
    client.get("/missing")
    first, second = out.getvalue().splitlines()
    words = first.split()
    assert words[1:4] == ["POST", "/hook", "204"] and words[4].endswith("ms")
    assert words[0].endswith("Z") and "corr=corr-7" in words
    assert "cards=c0,c1,c2,c3,c4,c5,c6,c7,c8,c9,+2 more " in first
    assert second.split()[1:4] == ["GET", "/missing", "404"] and "cards=" not in second


def test_json_lines_carry_every_card_and_status() -> None:
    app, out = _app("json")
    app.test_client().post("/hook", json=BULK)
    line = json.loads(out.getvalue())
    assert line["status"] == 204 and line["correlationId"] is None and line["latencyMs"] >= 0
    assert len(line["cards"]) == 12 and line["statuses"] == ["CARD_SHIPPED"] * 24


def test_a_body_that_is_not_json_is_logged_without_cards() -> None:
    app, out = _app("json")
    app.test_client().post("/hook", data=b"{nope", headers={"Content-Type": "application/json"})
    assert "cards" not in json.loads(out.getvalue())


@pytest.mark.slow
@pytest.mark.parametrize("quiet", [False, True])
def test_serve_logs_each_request_to_stderr_unless_quiet(tmp_path: Path, quiet: bool) -> None:
    args = ["--db", str(tmp_path / "d1.db"), "--log-format", "json", *(["--quiet"] if quiet else [])]
    server = ServeProcess(*args)
    try:
        answer = httpx.put(f"{server.url}/_sim/issuers/{ISSUER}", json={"webhookUrl": "http://127.0.0.1:9/x"})
        assert answer.status_code == 201
        httpx.get(f"{server.url}/")
    finally:
        _, err = server.stop()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    if quiet:
        assert lines == []
    else:
        assert [(x["method"], x["path"], x["status"]) for x in lines[:2]] == [
            ("PUT", f"/_sim/issuers/{ISSUER}", 201), ("GET", "/", 200)]
