"""The sender: classification, backoff, per-key order, time scale, resume, headers and TLS."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.auth import AuthError, NoAuth, StaticBearer
from d1sim.simulator.delivery.engine import (
    DeliveryEvent,
    DeliverySummary,
    Poster,
    Progress,
    SenderConfig,
    build_client,
    deliver_run,
    resend,
)
from d1sim.simulator.delivery.outbox import Attempt, Outbox
from d1sim.simulator.delivery.retry import RetryPolicy
from d1sim.simulator.errors import UsageError

URL = "http://receiver.test/notifications/d1/v2/issuers/{issuerId}/cards"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """A clock that only moves when the sender sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Receiver:
    """A MockTransport handler that records requests and answers from a script."""

    def __init__(self, answer: Handler | None = None) -> None:
        self.answer = answer or (lambda request: httpx.Response(204))
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self.lock:
            self.requests.append(request)
        return self.answer(request)

    @property
    def seqs(self) -> list[int]:
        return [seq_of(r) for r in self.requests]


def seq_of(request: httpx.Request) -> int:
    return int(request.headers["x-correlation-id"].removeprefix("corr-"))


def planned(n: int, keys: int = 1, due_step: float = 0.0) -> list[Delivery]:
    return [
        Delivery(
            seq=i,
            due=i * due_step,
            body=orjson.dumps({"operations": [{"seq": i}]}),
            card_ids=(f"card-{i % keys}",),
            statuses=("DATA_PREPARED",),
            correlation_id=f"corr-{i}",
            scenario="test",
            key=f"card-{i % keys}",
        )
        for i in range(n)
    ]


def new_run(box: Outbox, deliveries: list[Delivery]) -> str:
    run = box.create_run("test", URL, {})
    box.add_deliveries(run, deliveries)
    return run


def send(
    box: Outbox,
    run: str,
    receiver: Receiver,
    clock: FakeClock | None = None,
    *,
    time_scale: float = 0.0,
    progress: Progress | None = None,
    **options: Any,
) -> DeliverySummary:
    """Deliver ``run`` to ``receiver`` in-process, on a fake clock, with a seeded jitter."""
    clock = clock or FakeClock()
    config = SenderConfig(URL, **options)
    client = build_client(config, transport=httpx.MockTransport(receiver))
    return deliver_run(
        box,
        run,
        config,
        client=client,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        time_scale=time_scale,
        progress=progress,
    )


@pytest.fixture
def box(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "d1sim.db")


def script(*statuses: int | type[Exception], headers: dict[str, str] | None = None) -> Handler:
    """Answer with each status in turn (an exception class is raised), repeating the last."""
    calls = iter(range(10_000))

    def answer(request: httpx.Request) -> httpx.Response:
        step = statuses[min(next(calls), len(statuses) - 1)]
        if isinstance(step, type):
            raise step("scripted failure", request=request)  # type: ignore[call-arg]
        return httpx.Response(step, headers=headers)

    return answer


CLASSIFICATION = [
    (200, 1, "delivered", 1),
    (204, 1, "delivered", 0),
    (202, 1, "delivered", 1),
    (400, 1, "dead", 0),
    (401, 1, "dead", 0),
    (404, 1, "dead", 0),
    (409, 1, "dead", 0),
    (408, 8, "dead", 0),
    (429, 8, "dead", 0),
    (500, 8, "dead", 0),
    (503, 8, "dead", 0),
    (httpx.ConnectError, 8, "dead", 0),
    (httpx.ReadTimeout, 8, "dead", 0),
]


@pytest.mark.parametrize(("answer", "attempts", "state", "warnings"), CLASSIFICATION)
def test_classification(
    box: Outbox, answer: int | type[Exception], attempts: int, state: str, warnings: int
) -> None:
    run = new_run(box, planned(1))
    receiver = Receiver(script(answer))
    summary = send(box, run, receiver, keep_retrying_unreachable=True)  # D1's patience
    (stored,) = box.deliveries(run)
    detail = box.delivery(stored.id)
    assert len(receiver.requests) == attempts == len(detail.history)  # type: ignore[union-attr]
    assert stored.state == state and summary.warnings == warnings
    assert summary.attempts == attempts and summary.retries == attempts - 1
    if isinstance(answer, type):
        assert stored.last_status is None and stored.last_error
        assert answer.__name__ in stored.last_error


def test_retries_until_success(box: Outbox) -> None:
    run = new_run(box, planned(1))
    receiver = Receiver(script(503, httpx.ConnectError, 500, 204))
    summary = send(box, run, receiver)
    assert (summary.delivered, summary.attempts, summary.dead) == (1, 4, 0)
    (stored,) = box.deliveries(run)
    assert (stored.state, stored.attempts, stored.next_attempt_at) == ("delivered", 4, None)


def test_backoff_is_exponential_full_jitter_and_capped(box: Outbox) -> None:
    run = new_run(box, planned(1))
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=7, base=1.0, factor=2.0, cap=10.0)
    send(box, run, Receiver(script(500)), clock, retry=policy)
    ceilings = [1, 2, 4, 8, 10, 10]
    assert len(clock.sleeps) == 6
    assert all(0 <= s <= c for s, c in zip(clock.sleeps, ceilings, strict=True))
    rng = random.Random(7)  # the same seed: the waits are exactly the drawn jitter
    assert clock.sleeps == pytest.approx([rng.uniform(0, c) for c in ceilings])


def test_jitter_spreads_over_the_whole_window() -> None:
    policy, rng = RetryPolicy(), random.Random(1)
    delays = [policy.delay(4, rng) for _ in range(2000)]
    assert 0 <= min(delays) < 0.5 and 7.5 < max(delays) <= 8 and 3.5 < sum(delays) / 2000 < 4.5


def test_retry_after_seconds_is_honoured(box: Outbox) -> None:
    run = new_run(box, planned(1))
    clock = FakeClock()
    answer = script(429, 503, 204, headers={"Retry-After": "7"})
    summary = send(box, run, Receiver(answer), clock)
    assert clock.sleeps == [7.0, 7.0] and summary.delivered == 1


def test_retry_after_http_date_and_limit(box: Outbox) -> None:
    run = new_run(box, planned(2, keys=2))
    clock = FakeClock()
    date = formatdate(time.time() + 30, usegmt=True)

    def answer(request: httpx.Request) -> httpx.Response:
        if len(receiver.requests) > 2:
            return httpx.Response(204)
        late = seq_of(request) == 1
        return httpx.Response(503, headers={"Retry-After": "86400" if late else date})

    receiver = Receiver(answer)
    send(box, run, receiver, clock, concurrency=1, retry=RetryPolicy(max_retry_after=600))
    assert len(clock.sleeps) == 2 and 28 <= clock.sleeps[0] <= 31
    assert clock.sleeps[0] + clock.sleeps[1] == pytest.approx(600)  # clamped to the limit


def test_keys_stay_in_order_under_concurrency_and_retries(box: Outbox) -> None:
    run = new_run(box, planned(120, keys=6))
    chaos, active, lock = random.Random(3), set(), threading.Lock()
    peak, overlap = [0], []

    def answer(request: httpx.Request) -> httpx.Response:
        key = orjson.loads(request.content)["operations"][0]["seq"] % 6
        with lock:
            overlap.append(key in active)
            active.add(key)
            peak[0] = max(peak[0], len(active))
        time.sleep(chaos.random() / 2000)  # let workers interleave
        with lock:
            active.discard(key)
        return httpx.Response(503 if chaos.random() < 0.2 else 204)

    receiver = Receiver(answer)
    summary = send(box, run, receiver, concurrency=4)
    assert summary.delivered == 120 and not any(overlap) and peak[0] > 1
    by_key: dict[int, list[int]] = defaultdict(list)
    for seq in receiver.seqs:
        if not by_key[seq % 6] or by_key[seq % 6][-1] != seq:  # a retry repeats the same seq
            by_key[seq % 6].append(seq)
    assert all(seqs == sorted(seqs) == list(range(k, 120, 6)) for k, seqs in by_key.items())


def test_a_dead_letter_does_not_block_its_key(box: Outbox) -> None:
    run = new_run(box, planned(3))
    receiver = Receiver(lambda r: httpx.Response(400 if seq_of(r) == 1 else 204))
    summary = send(box, run, receiver)
    assert receiver.seqs == [0, 1, 2] and (summary.delivered, summary.dead) == (2, 1)


def test_time_scale_maps_due_to_real_seconds(box: Outbox) -> None:
    run = new_run(box, planned(4, keys=2, due_step=10.0))  # due 0, 10, 20, 30
    clock = FakeClock()
    receiver = Receiver()
    send(box, run, receiver, clock, time_scale=10.0)
    assert clock.sleeps == pytest.approx([1.0, 1.0, 1.0]) and receiver.seqs == [0, 1, 2, 3]
    fast = FakeClock()
    send(box, new_run(box, planned(4, due_step=10.0)), Receiver(), fast, time_scale=0.0)
    assert fast.sleeps == []


def test_resumed_run_starts_at_its_first_owed_due(box: Outbox) -> None:
    run = new_run(box, planned(6, due_step=100.0))
    for item in list(box.owed(run))[:3]:
        box.mark_delivered(item.id)
    box.set_run_status(run, "interrupted")
    clock = FakeClock()
    receiver = Receiver()
    send(box, run, receiver, clock, time_scale=100.0)
    assert receiver.seqs == [3, 4, 5] and clock.sleeps == pytest.approx([1.0, 1.0])


class Crash(BaseException):
    """Stands for SIGKILL: nothing after it is written."""


def test_resume_after_a_crash_delivers_exactly_what_is_owed(box: Outbox, tmp_path: Path) -> None:
    run = new_run(box, planned(60, keys=5))
    events: list[DeliveryEvent] = []

    def crash_after_20(event: DeliveryEvent) -> None:
        events.append(event)
        if len(events) == 20:
            raise Crash

    first = Receiver()
    with pytest.raises(Crash):
        send(box, run, first, concurrency=3, progress=crash_after_20)
    committed = {d.delivery.seq for d in box.deliveries(run, state="delivered", limit=100)}
    assert {e.delivery.delivery.seq for e in events} <= committed
    assert box.run(run).status == "interrupted"  # type: ignore[union-attr]
    assert len(committed) >= 20 and box.summary(run)["pending"] == 60 - len(committed)

    again = Outbox(tmp_path / "d1sim.db")  # a new process
    second = Receiver()
    send(again, run, second, concurrency=3)
    assert again.summary(run) == {"pending": 0, "delivered": 60, "dead": 0}
    assert set(first.seqs) | set(second.seqs) == set(range(60))
    assert not committed & set(second.seqs)  # what was committed is never sent again
    assert set(first.seqs) - committed <= set(second.seqs)  # in flight: sent again
    assert again.run(run).status == "done" and list(again.owed(run)) == []  # type: ignore


def test_retry_budget_and_schedule_survive_a_restart(box: Outbox) -> None:
    run = new_run(box, planned(1))

    def crash_after_3(event: DeliveryEvent) -> None:
        if event.summary.attempts == 3:
            raise Crash

    with pytest.raises(Crash):
        send(box, run, Receiver(script(503)), progress=crash_after_3)
    (stored,) = box.deliveries(run)
    assert stored.attempts == 3 and stored.next_attempt_at is not None
    receiver = Receiver(script(503))
    send(box, run, receiver)
    assert len(receiver.requests) == 5 and box.deliveries(run)[0].state == "dead"


def test_resend_sends_a_settled_delivery_again(box: Outbox) -> None:
    run = new_run(box, planned(2))
    send(box, run, Receiver(script(400)))
    dead = box.deliveries(run, state="dead")[0]
    receiver = Receiver()
    config = SenderConfig(URL)
    client = build_client(config, transport=httpx.MockTransport(receiver))
    summary = resend(box, dead.id, config, client=client, rng=random.Random(1))
    assert summary.delivered == 1 and receiver.seqs == [dead.delivery.seq]
    stored = box.delivery(dead.id)
    assert stored.state == "delivered"  # type: ignore[union-attr]
    assert [(a.number, a.status_code) for a in stored.history] == [(1, 400), (2, 204)]  # type: ignore
    with pytest.raises(UsageError):
        resend(box, 4242, config, client=client)


def test_every_post_carries_the_required_headers(box: Outbox) -> None:
    run = new_run(box, planned(2))
    receiver = Receiver(script(503, 204))
    send(box, run, receiver, auth=StaticBearer("static-t0ken"), sign_secret=SECRET)
    first, retry = receiver.requests[:2]
    assert str(first.url) == URL.replace("{issuerId}", "ISSUER0001")
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-correlation-id"] == "corr-0"
    assert first.headers["authorization"] == "Bearer static-t0ken"
    for request in receiver.requests:
        Webhook(SECRET).verify(request.content, dict(request.headers))
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]  # stable across retries
    assert first.headers["webhook-id"] != receiver.requests[2].headers["webhook-id"]


def test_each_attempt_keeps_the_headers_the_receiver_got_with_the_token_masked(box: Outbox) -> None:
    run = new_run(box, planned(1))
    receiver = Receiver(script(httpx.ReadTimeout, 503, 204))
    send(box, run, receiver, auth=StaticBearer("static-t0ken"), sign_secret=SECRET)
    stored = box.delivery(box.deliveries(run)[0].id)
    assert stored is not None and len(stored.history) == len(receiver.requests) == 3
    for attempt, request in zip(stored.history, receiver.requests, strict=True):
        got = [(k.decode(), v.decode()) for k, v in request.headers.raw]  # what reached the receiver
        expected = [(k, "Bearer ***" if k == "Authorization" else v) for k, v in got]
        assert list(attempt.request_headers or ()) == expected  # a timed-out attempt too
    assert "static-t0ken" not in str(stored.history)


class _TokenEndpointDown(NoAuth):
    def headers(self, client: httpx.Client) -> dict[str, str]:
        raise AuthError("the token endpoint answered 503")


def test_an_attempt_that_sent_no_request_stores_no_headers(box: Outbox) -> None:
    run = new_run(box, planned(1))
    config = SenderConfig(URL, auth=_TokenEndpointDown())
    receiver = Receiver()
    answer = Poster(config, build_client(config, transport=httpx.MockTransport(receiver))).attempt(
        next(box.owed(run)))
    assert receiver.requests == [] and answer.attempt.request_headers == ()
    box.record_attempt(1, answer.attempt)
    box.record_attempt(1, Attempt(1.0, 204, 1.0), state="delivered")  # a sender that does not say
    assert [a.request_headers for a in box.delivery(1).history] == [(), None]  # type: ignore[union-attr]


def test_unsigned_by_default(box: Outbox) -> None:
    run = new_run(box, planned(1))
    receiver = Receiver()
    send(box, run, receiver)
    assert not any(h.startswith("webhook-") for h in receiver.requests[0].headers)
    assert "authorization" not in receiver.requests[0].headers


def test_config_is_validated_and_hides_secrets() -> None:
    config = SenderConfig(
        URL, auth=StaticBearer("static-t0ken"), sign_secret=SECRET, issuer_id="ABCDEFGHIJ"
    )
    assert config.target.endswith("/issuers/ABCDEFGHIJ/cards")
    text = repr(config) + orjson.dumps(config.public_options()).decode()
    assert "static-t0ken" not in text and SECRET not in text and "LaLaSw" not in text
    for bad in (
        {"url": "ftp://x"},
        {"issuer_id": "short"},
        {"concurrency": 0},
        {"timeout": 0},
        {"client_key": "k.pem"},
        {"sign_secret": "whsec_"},
    ):
        with pytest.raises(UsageError):
            build_client(SenderConfig(**{"url": URL, **bad}))  # type: ignore[arg-type]


def test_refuses_a_half_planned_run(box: Outbox) -> None:
    run = box.create_run("test", URL, {})
    with pytest.raises(UsageError, match="not completely planned"):
        send(box, run, Receiver())


class SlowReceiver(BaseHTTPRequestHandler):
    """Answers 204 to the first ``free`` POSTs, then holds every answer until ``release``."""

    seqs: list[int] = []
    free = 40
    reached, release = threading.Event(), threading.Event()

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        cls.seqs.append(int(self.headers["x-correlation-id"].removeprefix("corr-")))
        if len(cls.seqs) >= cls.free:
            cls.reached.set()
            cls.release.wait(10)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # answers to the killed child hit a closed socket: expected


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_delivers_everything(tmp_path: Path) -> None:
    class Handler(SlowReceiver):  # fresh class state for this test
        seqs: list[int] = []
        reached, release = threading.Event(), threading.Event()

    server = QuietServer(("127.0.0.1", 0), Handler)  # listening once constructed
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/d1/v2/issuers/{{issuerId}}/cards"
    box = Outbox(tmp_path / "d1sim.db")
    run = new_run(box, planned(200, keys=10))
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys; from d1sim.simulator.delivery.outbox import Outbox; "
                "from d1sim.simulator.delivery.engine import SenderConfig, deliver_run; "
                "deliver_run(Outbox(sys.argv[1]), sys.argv[2], "
                "SenderConfig(sys.argv[3], concurrency=2))"
            ),
            str(box.path),
            run,
            url,
        ]
    )
    try:
        assert Handler.reached.wait(30), "the child never reached the receiver"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        before = len(Handler.seqs)
        in_flight = set(Handler.seqs[SlowReceiver.free - 1 :])  # held, never answered
        committed = box.summary(run)["delivered"]
        Handler.free = 10**6
        Handler.release.set()
        summary = deliver_run(box, run, SenderConfig(url, concurrency=2))
    finally:
        child.kill()
        server.shutdown()
        server.server_close()
    assert box.summary(run) == {"pending": 0, "delivered": 200, "dead": 0}
    assert 0 < committed < SlowReceiver.free and summary.delivered == 200 - committed
    assert set(Handler.seqs) == set(range(200)) and in_flight <= set(Handler.seqs[before:])
