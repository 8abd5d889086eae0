"""Replay over real loopback sockets: each of D1's auth modes, and a SIGKILL mid-run resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, request
from standardwebhooks import Webhook

from d1sim.contracts.scenario.expansion import expand_scenario, summarize
from d1sim.contracts.scenario.loading import load_bundled
from d1sim.simulator.cli.dispatch import main
from d1sim.simulator.delivery.outbox import Outbox
from d1sim.simulator.receiver.app import ReceiverConfig
from d1sim.simulator.web.servers import running_server

SIGN_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def replay(tmp_path: Path, *args: str) -> int:
    return main(["replay", "happy-path", *args, "--db", str(tmp_path / "o.db"), "--no-progress",
                 "--max-attempts", "2", "--backoff-base", "0.01"])


def test_static_bearer_token(tmp_path: Path, start_receiver: Callable[..., Any]) -> None:
    receiver = start_receiver(ReceiverConfig(bearer_token="s3cret-token"))
    state = ["--state-url", receiver.url + "/cards/{cardId}"]
    assert replay(tmp_path, "--target", receiver.webhook_url, "--bearer-token", "s3cret-token", *state) == 0
    assert replay(tmp_path, "--target", receiver.webhook_url, "--bearer-token", "wrong", *state) == 1
    stats = httpx.get(receiver.url + "/_receiver/stats", headers={"Authorization": "Bearer s3cret-token"}).json()
    assert stats["posts"] == 16 and stats["rejected"] == 8


def test_oauth2_client_credentials(tmp_path: Path, start_receiver: Callable[..., Any],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    receiver = start_receiver(ReceiverConfig(client_id="d1-client", client_secret="very-secret"))
    token_url = receiver.url + "/authz/d1/v1/oauth2/token"
    code = replay(tmp_path, "--target", receiver.webhook_url, "--oauth-token-url", token_url,
                  "--client-id", "d1-client", "--client-secret", "very-secret", "--scope", "notifications",
                  "--state-url", receiver.url + "/cards/{cardId}")
    assert code == 0
    assert "very-secret" not in capsys.readouterr().out
    assert b"very-secret" not in (tmp_path / "o.db").read_bytes()
    bad = replay(tmp_path, "--target", receiver.webhook_url, "--oauth-token-url", token_url,
                 "--client-id", "d1-client", "--client-secret", "nope")
    assert bad == 2  # the token endpoint refuses: a usage error, the run stays resumable
    assert "very-secret" not in capsys.readouterr().err


def _verifying_receiver(seen: list[dict[str, str]]) -> Flask:
    app, hook = Flask("signed"), Webhook(SIGN_SECRET)

    @app.post("/hook")
    def notify() -> tuple[str, int]:
        try:
            hook.verify(request.get_data(), dict(request.headers))
        except Exception:
            return "bad signature", 401
        seen.append(dict(request.headers))
        return "", 204

    return app


def test_standard_webhooks_signature_verifies_with_the_package(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []
    with running_server(_verifying_receiver(seen)) as url:
        assert replay(tmp_path, "--target", url + "/hook", "--sign-secret", SIGN_SECRET) == 0
        assert replay(tmp_path, "--target", url + "/hook") == 1  # unsigned: refused
    assert len(seen) == 8
    assert all(h["X-Correlation-Id"] and h["Webhook-Id"].startswith("msg_") for h in seen)


def _stats(url: str) -> dict[str, int]:
    return httpx.get(url + "/_receiver/stats", timeout=5).json()


@pytest.mark.slow
def test_a_replay_killed_with_sigkill_resumes_and_nothing_is_lost(tmp_path: Path,
                                                                  start_receiver: Callable[..., Any]) -> None:
    receiver = start_receiver(ReceiverConfig(latency=0.004))
    db = tmp_path / "outbox.db"
    args = [sys.executable, "-m", "d1sim", "replay", "bulk-batch", "--target", receiver.webhook_url,
            "--db", str(db), "--no-progress", "--concurrency", "2",
            "--state-url", receiver.url + "/cards/{cardId}", "--report-json", str(tmp_path / "r.json")]
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _stats(receiver.url)["posts"] < 150 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL, "the replay finished before it could be killed"
    with Outbox(db) as outbox:
        [run] = outbox.runs()
        owed_after_kill = outbox.summary(run.id)["pending"]
    assert owed_after_kill > 0

    again = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(resumed)" in again.stdout
    with Outbox(db) as outbox:
        assert len(outbox.runs()) == 1 and outbox.summary(run.id) == {"pending": 0, "delivered": 700, "dead": 0}
    planned = summarize(expand_scenario(load_bundled("bulk-batch")))
    assert _stats(receiver.url)["distinct_operations"] == planned.operations
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"] == {"passed": 3, "failed": 0, "skipped": 0}


def test_two_scenarios_share_one_asynchronous_receiver(tmp_path: Path) -> None:
    # A receiver that applies from a worker queue after its 204: the end state is polled until
    # it appears; the two scenarios' cards are distinct although their seeds are equal.
    from correct_receivers import TOKEN, worker_queue

    with running_server(worker_queue()) as url:
        code = main(["replay", "happy-path", "canceled-in-production", "--seed", "1",
                     "--target", url + "/notifications/d1/v2/issuers/ISSUER0001/cards",
                     "--bearer-token", TOKEN, "--state-url", url + "/cards/{cardId}",
                     "--settle", "3", "--db", str(tmp_path / "o.db"), "--no-progress",
                     "--report-json", str(tmp_path / "r.json")])
    assert code == 0
    cases = json.loads((tmp_path / "r.json").read_text())
    assert "end_state" in json.dumps(cases) and "failed" not in {
        c.get("outcome") for c in _cases(cases)}


def _cases(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, dict):
        found = [document] if "outcome" in document else []
        return found + [c for v in document.values() for c in _cases(v)]
    if isinstance(document, list):
        return [c for v in document for c in _cases(v)]
    return []
