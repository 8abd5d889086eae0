"""No credential d1sim knows ends up in what it stores or shows, even when a receiver echoes it."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from flask import Flask, request
from hypothesis import given
from hypothesis import strategies as st

from d1sim.simulator import redaction
from d1sim.simulator.cli import main
from d1sim.simulator.delivery.outbox import Attempt, Outbox
from d1sim.simulator.redaction import mask_attempt, mask_bytes, mask_headers, mask_text, strip_userinfo
from d1sim.simulator.web.servers import running_server
from tests.simulator.d1_support import HOOK, ISSUER, mock_d1, wait_for

TOKEN = "hook-t0ken-echoed-back"
URL_PASSWORD = "url-pa55word"
CLIENT_SECRET = "client-s3cret-value"


def echoing_receiver() -> Flask:
    """Answers every POST 400 with the headers it got (a badly written debug endpoint)."""
    app = Flask("echo")

    @app.post("/<path:anything>")
    def echo(anything: str) -> tuple[str, int]:
        lines = [f"{k}: {v}" for k, v in request.headers.items()]
        return json.dumps({"got": dict(request.headers), "raw": lines}), 400

    return app


def database_text(path: Path) -> str:
    """Every cell of the runs, deliveries and attempts tables of an SQLite file, joined.

    (The mock D1's issuers table keeps an issuer's credentials on purpose: it sends with them.)
    """
    with sqlite3.connect(path) as db:
        tables = ("runs", "deliveries", "attempts")
        cells = [cell for t in tables for row in db.execute(f"SELECT * FROM {t}") for cell in row]  # noqa: S608
    return "\n".join(c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in cells)


@pytest.mark.parametrize(
    "text, secrets, leaked",
    [
        ("Authorization: Bearer abcdef123", (), "abcdef123"),
        ("authorization:Basic ZDE6czNjcmV0", (), "ZDE6czNjcmV0"),
        ('{"access_token": "tok-123", "expires_in": "900"}', (), "tok-123"),
        ("client_secret=s3cret&grant_type=client_credentials", (), "s3cret"),
        ("Cookie: session=abc123", (), "session=abc123"),
        ("POST https://bank:pw-1234@hook.example/x failed", (), "pw-1234"),
        ("the receiver said mysecretvalue twice: mysecretvalue", ("mysecretvalue",), "mysecretvalue"),
    ],
)
def test_credential_shapes_and_known_secrets_are_masked(text: str, secrets: tuple[str, ...], leaked: str) -> None:
    masked = mask_text(text, secrets)
    assert leaked not in masked
    assert "***" in masked or "@" not in masked


def test_masking_keeps_what_is_not_secret() -> None:
    text = '{"error": "invalid notification", "problems": [{"path": "operations[0]"}]}'
    assert mask_text(text) == text
    assert mask_bytes(b"\xff\xfe plain") == b"\xff\xfe plain"
    assert strip_userinfo("http://127.0.0.1:8090/hooks/{issuerId}?a=b@c") == "http://127.0.0.1:8090/hooks/{issuerId}?a=b@c"
    assert mask_headers({"Authorization": "Bearer x", "Content-Type": "application/json"}) == (
        ("Authorization", "Bearer ***"),
        ("Content-Type", "application/json"),
    )
    attempt = mask_attempt(Attempt(0.0, None, 1.0, b"Bearer abcdef", "connection error: Bearer abcdef"))
    assert attempt.response == b"Bearer ***" and attempt.error == "connection error: Bearer ***"


# Pieces of credential shapes, cut and cased every way, among harmless text.
_PIECES = ["Bearer ", "BASIC\t", "digest ", "Authorization: ", "cookie:", "Set-Cookie: ", "X-API-KEY: ", "@",
           "://", "https://", "u:p", '"access_token": "', '"clientSecret":"', "PASSWORD=", "ToKeN=", "ſecret=",
           "\u212aey", "secret", "a", "Z", "0", "-", " ", "\n", '"', "=", "&", "é", "ß"]


@given(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join))
def test_text_the_fast_path_lets_through_has_nothing_a_pattern_would_mask(text: str) -> None:
    if not redaction._MAYBE_SHAPED.search(text.casefold()):
        assert redaction._mask_shapes(text) == text
    else:
        assert mask_text(text) == redaction._mask_shapes(text)


def test_request_headers_keep_the_scheme_and_the_signature_and_lose_every_credential() -> None:
    sent = [("authorization", "Bearer abc.def"), ("Proxy-Authorization", "Basic ZDE6czNjcmV0"),
            ("Cookie", "session=abc123"), ("X-Api-Key", "k-123456"), ("Authorization", "Token t-9876"),
            ("x-echo", "the token is s3cr3t-value"),
            ("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")]
    assert mask_headers(sent, ["s3cr3t-value"]) == (
        ("authorization", "Bearer ***"), ("Proxy-Authorization", "Basic ***"), ("Cookie", "***"),
        ("X-Api-Key", "***"), ("Authorization", "***"), ("x-echo", "the token is ***"),
        ("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),  # a MAC, not a key
    )
    assert mask_headers(mask_headers(sent)) == mask_headers(sent)  # masking twice changes nothing


def test_replay_stores_and_shows_no_echoed_token_and_no_url_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, report = tmp_path / "o.db", tmp_path / "report.json"
    with running_server(echoing_receiver()) as url:
        target = url.replace("http://", f"http://bank:{URL_PASSWORD}@") + "/hook"
        code = main(["replay", "happy-path", "--target", target, "--bearer-token", TOKEN, "--db", str(db),
                     "--no-progress", "--report-json", str(report)])
    assert code == 1  # every delivery died on the 400
    with Outbox(db) as outbox:
        [run] = outbox.runs()
        first = outbox.deliveries(run.id)[0].id
    assert main(["runs", "list", "--db", str(db)]) == 0
    assert main(["deliveries", "show", str(first), "--db", str(db)]) == 0
    assert main(["deliveries", "list", run.id, "--db", str(db)]) == 0
    shown = capsys.readouterr()
    for text in (database_text(db), shown.out, shown.err, report.read_text()):
        assert TOKEN not in text and URL_PASSWORD not in text
    assert '"Authorization": "***"' in database_text(db), "the echo is kept, masked"
    stored = Outbox(db).delivery(first)
    assert stored is not None and stored.history[0].request_headers is not None
    # The headers sent are kept, masked (here httpx sent the URL's userinfo as Basic auth).
    assert dict(stored.history[0].request_headers)["Authorization"] in ("Basic ***", "Bearer ***")
    assert base64.b64encode(f"bank:{URL_PASSWORD}".encode()).decode() not in database_text(db)


def test_the_mock_d1_stores_and_shows_no_echoed_credential(tmp_path: Path) -> None:
    with running_server(echoing_receiver()) as echo_url, mock_d1(tmp_path) as d1:
        hook = echo_url.replace("http://", f"http://bank:{URL_PASSWORD}@") + HOOK
        auth = {"type": "bearer", "token": TOKEN}
        shown = d1.register(webhookUrl=hook, auth=auth, retry={"maxAttempts": 1}).text
        d1.order("card-echo")
        delivery = wait_for(lambda: _first_attempted(d1.http), what="an attempt")
        texts = [shown, delivery.text] + [
            d1.http.get(p).text for p in ("/_sim/issuers", "/_sim/runs", f"/_sim/issuers/{ISSUER}")
        ]
    for text in [*texts, database_text(tmp_path / "d1.db")]:
        assert TOKEN not in text and URL_PASSWORD not in text
    assert "***" in delivery.text
    assert dict(delivery.json()["history"][0]["requestHeaders"])["Authorization"] in ("Basic ***", "Bearer ***")


def _first_attempted(http: httpx.Client) -> httpx.Response | None:
    runs = http.get("/_sim/runs").json()["runs"]
    if not runs:
        return None
    items = http.get(f"/_sim/runs/{runs[0]['runId']}/deliveries").json()["deliveries"]
    tried = [i for i in items if i["attempts"] > 0 or i["lastStatus"] is not None]
    return http.get(f"/_sim/deliveries/{tried[0]['id']}") if tried else None
