"""Sender processes on lanes partitioned by key: every delivery once, per-key order, errors said.

The lanes are real processes POSTing to a loopback server; the spies here sit in the calling
process (which creates the lanes and routes to them), so a test knows whether lanes did the work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery import lanes
from d1sim.simulator.delivery.auth import OAuth2ClientCredentials, StaticBearer
from d1sim.simulator.delivery.driver import DeliveryEvent, TargetUnreachable
from d1sim.simulator.delivery.engine import SenderConfig, deliver_run
from d1sim.simulator.delivery.outbox import Outbox
from d1sim.simulator.delivery.retry import RetryPolicy
from d1sim.simulator.errors import UsageError
from tests.simulator.senders import http_server

KEYS, PER_KEY = 40, 20  # 800 deliveries: above lanes.SMALL, so lanes are used


def planned(keys: int = KEYS, per_key: int = PER_KEY) -> Iterator[Delivery]:
    seq = 0
    for n in range(per_key):
        for k in range(keys):
            body = orjson.dumps({"key": f"k{k}", "n": n})
            yield Delivery(seq, 0.0, body, (f"c{k}",), ("X",), f"corr-{seq}", "s", f"k{k}")
            seq += 1


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """The lanes this process starts, and whether a router handed them work."""
    seen: dict[str, list] = {"lanes": [], "routed": []}
    made, routed = lanes._Lane.__init__, lanes._Router.run

    def lane_init(self: lanes._Lane, *args: object, **kwargs: object) -> None:
        made(self, *args, **kwargs)  # type: ignore[arg-type]
        seen["lanes"].append(self)

    def router_run(self: lanes._Router, *args: object) -> object:
        seen["routed"].append(len(self.lanes))
        return routed(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(lanes._Lane, "__init__", lane_init)
    monkeypatch.setattr(lanes._Router, "run", router_run)
    return seen


def outbox_with(tmp_path: Path, deliveries: Iterator[Delivery]) -> tuple[Outbox, str]:
    box = Outbox(tmp_path / "o.db")
    run = box.create_run("s", "http://127.0.0.1:9/hook", {})
    box.add_deliveries(run, deliveries)
    return box, run


def test_lanes_deliver_everything_once_in_per_key_order_with_retries(tmp_path: Path, spied: dict) -> None:
    lock, firsts = threading.Lock(), set()

    def answer(handler: object, seen: dict) -> tuple[int, dict[str, str], bytes]:
        body = orjson.loads(seen["requests"][-1][1])
        with lock:
            again = (body["key"], body["n"]) in firsts
            firsts.add((body["key"], body["n"]))
        if body["n"] % 7 == 3 and not again:
            return 503, {"Retry-After": "0"}, b"busy"  # its key waits for the retry
        return 204, {}, b""

    box, run = outbox_with(tmp_path, planned())
    config = SenderConfig("http://x", concurrency=4, retry=RetryPolicy(base=0.0, cap=0.0))
    with box, http_server(answer) as (url, seen):
        summary = deliver_run(box, run, SenderConfig(url, concurrency=4, retry=config.retry), senders=2)
        counts = box.summary(run)
        attempts = box.db.fetchone("SELECT COUNT(*) FROM attempts")[0]
    assert spied["routed"] == [2]
    retried = KEYS * len([n for n in range(PER_KEY) if n % 7 == 3])
    assert summary.delivered == KEYS * PER_KEY == counts["delivered"]
    assert summary.retries == retried and summary.attempts == KEYS * PER_KEY + retried == attempts
    order: dict[str, list[int]] = defaultdict(list)
    for _, body in seen["requests"]:
        sent = orjson.loads(body)
        order[sent["key"]].append(sent["n"])
    for key, ns in order.items():
        assert ns == sorted(ns), f"{key} arrived out of order: {ns}"  # a retry comes before the next
        assert sorted(set(ns)) == list(range(PER_KEY))


def test_a_small_plan_is_sent_by_this_process_alone(tmp_path: Path, spied: dict) -> None:
    box, run = outbox_with(tmp_path, planned(keys=5, per_key=4))
    with box, http_server(lambda h, s: (204, {}, b"")) as (url, seen):
        summary = deliver_run(box, run, SenderConfig(url, concurrency=4), senders=2)
    assert summary.delivered == 20 == len(seen["requests"])
    assert spied["routed"] == [] and len(spied["lanes"]) == 2  # started, then let go unused
    assert all(lane.process.poll() is not None for lane in spied["lanes"])


def test_lanes_say_an_unreachable_target_as_one_sender_does_and_keep_everything(tmp_path: Path) -> None:
    box, run = outbox_with(tmp_path, planned())
    with box:
        with pytest.raises(TargetUnreachable, match="cannot connect to the target"):
            deliver_run(box, run, SenderConfig("http://127.0.0.1:9/hook", concurrency=4), senders=2)
        assert box.summary(run)["pending"] == KEYS * PER_KEY
        assert box.run(run).status == "interrupted"  # type: ignore[union-attr]


def test_progress_comes_back_from_the_lanes_with_running_totals(tmp_path: Path) -> None:
    events: list[DeliveryEvent] = []
    box, run = outbox_with(tmp_path, planned())
    with box, http_server(lambda h, s: (204, {}, b"")) as (url, _):
        deliver_run(box, run, SenderConfig(url, concurrency=4), senders=2, progress=events.append)
    assert len(events) == KEYS * PER_KEY
    assert {e.delivery.delivery.key for e in events} == {f"k{k}" for k in range(KEYS)}
    assert all(e.state == "delivered" and e.attempt.status_code == 204 for e in events)
    totals = [e.summary.delivered for e in events]
    assert totals == sorted(totals) and totals[-1] == KEYS * PER_KEY


def test_a_killed_lane_stops_the_run_and_the_run_resumes(tmp_path: Path, spied: dict) -> None:
    killed = threading.Event()

    def answer(handler: object, seen: dict) -> tuple[int, dict[str, str], bytes]:
        if len(seen["requests"]) == 200 and not killed.is_set():
            killed.set()
            os.kill(spied["lanes"][0].process.pid, signal.SIGKILL)
        return 204, {}, b""

    box, run = outbox_with(tmp_path, planned())
    with box, http_server(answer) as (url, seen):
        config = SenderConfig(url, concurrency=4)
        with pytest.raises(UsageError, match=r"sender process 1 stopped unexpectedly \(exit code -9\)"):
            deliver_run(box, run, config, senders=2)
        assert 0 < box.summary(run)["pending"] < KEYS * PER_KEY
        deliver_run(box, run, config, senders=1)  # what the lane had not recorded is sent again
        assert box.summary(run) == {"pending": 0, "delivered": KEYS * PER_KEY, "dead": 0}
    delivered = {orjson.loads(body)["key"] + ":" + str(orjson.loads(body)["n"]) for _, body in seen["requests"]}
    assert len(delivered) == KEYS * PER_KEY  # at least once, as D1


def test_when_no_sender_process_can_start_this_process_sends_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = []
    real = subprocess.Popen

    def second_fails(*args: object, **kwargs: object) -> object:
        if started:
            raise OSError("no such interpreter")
        started.append(real(*args, **kwargs))  # type: ignore[call-overload]
        return started[-1]

    monkeypatch.setattr(lanes.subprocess, "Popen", second_fails)
    box, run = outbox_with(tmp_path, planned())
    with box, http_server(lambda h, s: (204, {}, b"")) as (url, seen):
        summary = deliver_run(box, run, SenderConfig(url, concurrency=4), senders=2)
    assert summary.delivered == KEYS * PER_KEY == len(seen["requests"])
    assert started[0].poll() == 0  # the one that started was let go before any work


def test_lanes_are_only_for_configs_that_can_travel() -> None:
    assert lanes.lanes_for(SenderConfig("http://h/x", concurrency=8, auth=StaticBearer("t")), 4) == 4
    assert lanes.lanes_for(SenderConfig("http://h/x", concurrency=3), 4) == 3  # a connection each at least
    assert lanes.lanes_for(SenderConfig("http://h/x", concurrency=8), 1) == 1
    oauth = OAuth2ClientCredentials("http://h/token", "id", "secret")
    assert lanes.lanes_for(SenderConfig("http://h/x", concurrency=8, auth=oauth), 4) == 4
    injected = OAuth2ClientCredentials("http://h/token", "id", "secret", clock=lambda: 0.0)
    assert lanes.lanes_for(SenderConfig("http://h/x", concurrency=8, auth=injected), 4) == 1


def test_a_key_always_goes_through_the_same_lane() -> None:
    assert {lanes.lane_of("s:group-7", 3) for _ in range(5)} == {lanes.lane_of("s:group-7", 3)}
    spread = {lanes.lane_of(f"s:card-{n}", 2) for n in range(50)}
    assert spread == {0, 1}


def test_replay_with_two_senders_delivers_a_scenario_end_to_end(tmp_path: Path) -> None:
    scenario = tmp_path / "many.yaml"
    one_per_post = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios" / "one-per-post.yaml"
    text = one_per_post.read_text(encoding="utf-8")
    scenario.write_text(text.replace("count: 10000", "count: 150"), encoding="utf-8")
    with http_server(lambda h, s: (204, {}, b"")) as (url, seen):
        done = subprocess.run([sys.executable, "-m", "d1sim", "replay", str(scenario), "--target", url,
                               "--db", str(tmp_path / "o.db"), "--senders", "2", "--no-progress"],
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "2 expectations passed, 0 failed" in done.stdout and len(seen["requests"]) == 750
    with Outbox(tmp_path / "o.db") as box:
        assert box.db.fetchone("SELECT COUNT(*), SUM(state = 'delivered') FROM deliveries") == (750, 750)
