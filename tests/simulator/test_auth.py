"""Outbound auth: static bearer, OAuth2 client credentials with caching and one 401 refresh,
Standard Webhooks signing, and secrets that never leak into errors or stored options."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.auth import AuthError, NoAuth, OAuth2ClientCredentials, Signer, StaticBearer
from d1sim.simulator.delivery.engine import SenderConfig, build_client, deliver_run
from d1sim.simulator.delivery.outbox import Outbox
from d1sim.simulator.delivery.retry import RetryPolicy
from d1sim.simulator.errors import UsageError

BASE = "http://issuer.test"
TOKEN_URL = f"{BASE}/authz/d1/v1/oauth2/token"
TARGET = f"{BASE}/notifications/d1/v2/issuers/{{issuerId}}/cards"
CLIENT_SECRET = "cl13nt-s3cr3t"
SIGN_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    """The issuer's token endpoint and notification endpoint, behind one MockTransport."""

    def __init__(self, expires_in: object = "900", token_status: int = 200) -> None:
        self.expires_in, self.token_status = expires_in, token_status
        self.token_requests: list[httpx.Request] = []
        self.posts: list[httpx.Request] = []
        self.valid: set[str] = set()
        self.reject_all = False
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self.lock:
            if request.url.path.endswith("/oauth2/token"):
                return self._token(request)
            self.posts.append(request)
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            ok = token in self.valid and not self.reject_all
            return httpx.Response(204 if ok else 401)

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests.append(request)
        token = f"tok-{len(self.token_requests)}"
        self.valid = {token}  # a new token revokes the previous one
        reply = {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
        return httpx.Response(self.token_status, json=reply)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def oauth(clock: Clock | None = None, scope: str | None = "produce") -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(TOKEN_URL, "client-1", CLIENT_SECRET, scope, clock or Clock())


def test_token_request_is_basic_auth_with_a_form_body() -> None:
    issuer = Issuer()
    headers = oauth().headers(issuer.client())
    (request,) = issuer.token_requests
    assert request.method == "POST" and headers == {"Authorization": "Bearer tok-1"}
    user = base64.b64decode(request.headers["authorization"].removeprefix("Basic ")).decode()
    assert user == f"client-1:{CLIENT_SECRET}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["produce"],
    }
    oauth(scope=None).headers(issuer.client())
    assert parse_qs(issuer.token_requests[1].content.decode()) == {
        "grant_type": ["client_credentials"]
    }


@pytest.mark.parametrize("expires_in", ["900", 900, 900.0])
def test_token_is_cached_until_shortly_before_expiry(expires_in: object) -> None:
    issuer, clock = Issuer(expires_in), Clock()
    auth, client = oauth(clock), issuer.client()
    for _ in range(50):
        assert auth.headers(client) == {"Authorization": "Bearer tok-1"}
    clock.now += 869  # 900 s minus the 30 s refresh margin, not yet reached
    assert auth.headers(client) == {"Authorization": "Bearer tok-1"}
    clock.now += 1
    assert auth.headers(client) == {"Authorization": "Bearer tok-2"}
    assert len(issuer.token_requests) == auth.fetches == 2


def test_short_lived_tokens_refresh_a_tenth_early() -> None:
    issuer, clock = Issuer("60"), Clock()
    auth, client = oauth(clock), issuer.client()
    auth.headers(client)
    clock.now += 53.9
    assert auth.headers(client)["Authorization"] == "Bearer tok-1"
    clock.now += 0.2
    assert auth.headers(client)["Authorization"] == "Bearer tok-2"


def run_with(tmp_path: Path, issuer: Issuer, auth: object, n: int = 5, **extra: object) -> Outbox:
    box = Outbox(tmp_path / "d1sim.db")
    config = SenderConfig(TARGET, auth=auth, concurrency=3, **extra)  # type: ignore[arg-type]
    run = box.create_run("auth", config.target, config.public_options())
    box.add_deliveries(
        run,
        [
            Delivery(
                i, 0.0, b'{"operations": []}', (f"c{i}",), ("X",), f"corr-{i}", "auth", f"c{i}"
            )
            for i in range(n)
        ],
    )
    client = build_client(config, transport=httpx.MockTransport(issuer))
    deliver_run(box, run, config, client=client, sleep=lambda s: None, rng=random.Random(1))
    return box


def test_one_token_serves_a_whole_run(tmp_path: Path) -> None:
    issuer = Issuer()
    box = run_with(tmp_path, issuer, oauth(), n=30)
    assert len(issuer.token_requests) == 1 and len(issuer.posts) == 30
    assert {p.headers["authorization"] for p in issuer.posts} == {"Bearer tok-1"}
    assert box.summary(box.runs()[0].id)["delivered"] == 30


def test_a_401_fetches_one_new_token_and_repeats_the_post_once(tmp_path: Path) -> None:
    issuer, auth = Issuer(), oauth()
    auth.headers(issuer.client())
    issuer.valid = set()  # the receiver revoked tok-1
    box = run_with(tmp_path, issuer, auth, n=4)
    # Workers rejected with the same old token share one refresh: tok-2 serves everything.
    assert len(issuer.token_requests) == 2
    assert {p.headers["authorization"] for p in issuer.posts} <= {"Bearer tok-1", "Bearer tok-2"}
    items = box.deliveries(box.runs()[0].id)
    assert {d.state for d in items} == {"delivered"}
    for item in items:
        (attempt,) = box.delivery(item.id).history  # type: ignore[union-attr]
        assert attempt.status_code == 204
    warned = [box.delivery(d.id).history[0].warning for d in items]  # type: ignore[union-attr]
    assert any(w and "token fetched again" in w for w in warned)


def test_a_401_after_the_refresh_is_a_permanent_failure(tmp_path: Path) -> None:
    issuer = Issuer()
    issuer.reject_all = True
    box = run_with(tmp_path, issuer, oauth(), n=1)
    assert len(issuer.posts) == 2 and len(issuer.token_requests) == 2
    assert box.deliveries(box.runs()[0].id)[0].state == "dead"


def test_static_bearer_and_no_auth(tmp_path: Path) -> None:
    assert StaticBearer("abc").headers(httpx.Client()) == {"Authorization": "Bearer abc"}
    assert NoAuth().headers(httpx.Client()) == {} and not StaticBearer("x").on_unauthorized("x")
    issuer = Issuer()
    issuer.valid = {"abc"}
    run_with(tmp_path, issuer, StaticBearer("abc"), n=3)
    assert {p.headers["authorization"] for p in issuer.posts} == {"Bearer abc"}
    with pytest.raises(UsageError):
        StaticBearer("")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(401, json={"error": "invalid_client"}), "answered 401"),
        (httpx.Response(500, text=f"boom: bad secret {CLIENT_SECRET}"), "answered 500"),
        (httpx.Response(200, content=b"not json"), "no usable access_token"),
        (httpx.Response(200, json={"token_type": "Bearer"}), "no usable access_token"),
        (httpx.Response(200, json={"access_token": "t", "expires_in": "soon"}), "no usable"),
    ],
)
def test_token_endpoint_failures_are_clear_and_secret_free(
    answer: httpx.Response, expected: str
) -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda request: answer))
    with pytest.raises(AuthError) as caught:
        oauth().headers(client)
    message = str(caught.value)
    assert expected in message and TOKEN_URL in message and CLIENT_SECRET not in message
    assert isinstance(caught.value, UsageError)


def test_unreachable_token_endpoint(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(AuthError, match="unreachable: ConnectError") as caught:
        oauth().headers(httpx.Client(transport=httpx.MockTransport(refuse)))
    assert CLIENT_SECRET not in str(caught.value)


def test_token_failure_stops_the_run_and_keeps_it_resumable(tmp_path: Path) -> None:
    issuer = Issuer(token_status=503)
    with pytest.raises(AuthError, match="answered 503"):
        run_with(tmp_path, issuer, oauth(), n=3)
    box = Outbox(tmp_path / "d1sim.db")
    run = box.runs()[0]
    assert run.status == "interrupted" and box.summary(run.id)["pending"] == 3
    assert issuer.posts == []


def test_secrets_are_absent_from_the_outbox_file_and_reprs(tmp_path: Path) -> None:
    issuer = Issuer()
    auth = oauth()
    box = run_with(tmp_path, issuer, auth, n=3, sign_secret=SIGN_SECRET)
    box.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for secret in (CLIENT_SECRET, SIGN_SECRET.removeprefix("whsec_"), "tok-1"):
        assert secret.encode() not in raw
        assert secret not in repr(auth) + repr(StaticBearer(secret)) + repr(Signer(SIGN_SECRET))
    options = Outbox(tmp_path / "d1sim.db").runs()[0].options
    assert options["auth"] == {
        "mode": "oauth2",
        "token_url": TOKEN_URL,
        "client_id": "client-1",
        "scope": "produce",
    }
    assert options["signed"] is True


def test_signer_headers_verify_with_standard_webhooks() -> None:
    body = orjson.dumps({"operations": [{"cardId": "c1"}]})
    headers = Signer(SIGN_SECRET).headers("msg_1", body, time.time())
    assert Webhook(SIGN_SECRET).verify(body, headers) == {"operations": [{"cardId": "c1"}]}
    with pytest.raises(Exception, match="signature"):
        Webhook(SIGN_SECRET).verify(body + b" ", headers)


def test_signer_signs_bytes_that_are_not_utf8() -> None:
    body = b'{"operations": "\xff"}'
    headers = Signer(SIGN_SECRET).headers("msg_2", body, 1_700_000_000.7)
    key = base64.b64decode(SIGN_SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, b"msg_2.1700000000." + body, hashlib.sha256).digest()
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()


def test_bad_signing_secret_is_a_usage_error_without_the_secret() -> None:
    with pytest.raises(UsageError) as caught:
        Signer("whsec_")
    assert "whsec_" in str(caught.value)
    with pytest.raises(UsageError, match="http"):
        OAuth2ClientCredentials("ftp://x", "id", CLIENT_SECRET)


def make_pki(folder: Path) -> None:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256)."""
    openssl = shutil.which("openssl") or pytest.skip("openssl is not installed")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=folder)

    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=d1sim test CA",
    )
    for name, extension in (
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (folder / f"{name}.ext").write_text(extension + "\n")
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
        )


class PeerRecorder(BaseHTTPRequestHandler):
    peers: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        subject = dict(field[0] for field in self.connection.getpeercert()["subject"])
        type(self).peers.append(subject["commonName"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietTLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the refused handshakes below are expected


def test_mutual_tls_over_a_real_socket(tmp_path: Path) -> None:
    make_pki(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    context.load_verify_locations(tmp_path / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED  # the receiver demands D1's client certificate
    server = QuietTLSServer(("127.0.0.1", 0), PeerRecorder)  # listening once constructed
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/d1/v2/issuers/{{issuerId}}/cards"
    try:
        box = Outbox(tmp_path / "d1sim.db")
        tls = {
            "ca_cert": str(tmp_path / "ca.pem"),
            "client_cert": str(tmp_path / "client.pem"),
            "client_key": str(tmp_path / "client.key"),
        }
        assert deliver_mtls(box, url, **tls) == "delivered"
        assert PeerRecorder.peers == ["client"]
        assert deliver_mtls(box, url, ca_cert=tls["ca_cert"]) == "dead"  # no client cert
        assert (
            deliver_mtls(box, url, client_cert=tls["client_cert"], client_key=tls["client_key"])
            == "dead"
        )  # unknown server CA
        assert PeerRecorder.peers == ["client"]
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(UsageError, match="cannot load the TLS certificates"):
        build_client(SenderConfig(url, client_cert=str(tmp_path / "missing.pem")))


def deliver_mtls(box: Outbox, url: str, **tls: str) -> str:
    config = SenderConfig(url, retry=RetryPolicy(max_attempts=1), timeout=5, **tls)  # type: ignore
    run = box.create_run("mtls", config.target, config.public_options())
    box.add_deliveries(run, [Delivery(0, 0.0, b"{}", ("c",), ("X",), "corr", "mtls", "c")])
    deliver_run(box, run, config)
    (stored,) = box.deliveries(run)
    assert stored.state == "delivered" or "connection error" in (stored.last_error or "")
    return stored.state
