"""Delivery that cannot double or stall: one sender per run, attempts bounded in time and size."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.cli import main
from d1sim.simulator.delivery.engine import deliver_run
from d1sim.simulator.delivery.lease import RunBusy, RunLease
from d1sim.simulator.delivery.outbox import RESPONSE_EXCERPT, Outbox
from d1sim.simulator.delivery.retry import RetryPolicy
from d1sim.simulator.delivery.sender import BODY_CAP, SenderConfig
from d1sim.simulator.errors import UsageError
from tests.simulator.senders import ENGINES, attempt, raw_server, stored


@pytest.mark.parametrize("engine", ENGINES)
def test_a_trickling_receiver_cannot_hold_an_attempt_beyond_the_timeout(engine: str) -> None:
    def trickle(conn: socket.socket) -> None:
        for byte in b"HTTP/1.1 204 No Content\r\nX-Slow: " + b"a" * 200:  # one byte each 0.25 s
            conn.sendall(bytes([byte]))
            time.sleep(0.25)

    with raw_server(trickle) as (url, _):
        started = time.monotonic()
        answer = attempt(engine, SenderConfig(url, timeout=1.0), stored())
        took = time.monotonic() - started
    # Each read returns within 0.25 s, so a per-read timeout of 1 s never fires on its own.
    assert answer.attempt.status_code is None and "timeout after 1 s" in (answer.attempt.error or "")
    assert took < 3.0


@pytest.mark.parametrize("engine", ENGINES)
def test_an_answer_body_is_read_only_up_to_the_cap(engine: str) -> None:
    sent = {"bytes": 0}
    total = 64 * 1024 * 1024

    def flood(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        chunk = b"x" * 65536
        while sent["bytes"] < total:
            conn.sendall(chunk)
            sent["bytes"] += len(chunk)

    with raw_server(flood) as (url, _):
        answer = attempt(engine, SenderConfig(url, timeout=10.0), stored())
    assert answer.attempt.status_code == 200 and len(answer.attempt.response) == RESPONSE_EXCERPT
    assert f"over {BODY_CAP // 1024} KiB" in (answer.attempt.warning or "")
    assert sent["bytes"] < total // 4  # the rest was never read: the connection was closed


def planned_run(box: Outbox, n: int = 3) -> str:
    run = box.create_run("lease", "http://127.0.0.1:9/hook", {})
    box.add_deliveries(run, [Delivery(i, 0.0, b"{}", ("c",), ("X",), f"corr-{i}", "lease", "c") for i in range(n)])
    return run


def test_a_second_sender_on_a_live_run_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d1sim.db"
    box, other = Outbox(path), Outbox(path)
    run = planned_run(box)
    with RunLease(box, run):
        assert other.run(run).status == "running"  # type: ignore[union-attr]
        with pytest.raises(RunBusy, match=f"run {run} is being sent right now by another d1sim"):
            deliver_run(other, run, SenderConfig("http://127.0.0.1:9/hook"))
    assert other.run(run).status == "done"  # type: ignore[union-attr]


def test_an_expired_lease_is_taken_over(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "d1sim.db")
    run = planned_run(box)
    now = [1000.0]
    stale = RunLease(box, run, ttl=15.0, clock=lambda: now[0])
    stale.take()  # a sender on another machine whose heartbeat stopped
    with pytest.raises(RunBusy):
        RunLease(box, run, ttl=15.0, clock=lambda: now[0] + 14).take()
    RunLease(box, run, ttl=15.0, clock=lambda: now[0] + 16).take()


@pytest.mark.slow
def test_a_killed_sender_frees_its_run_and_shows_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "d1sim.db"
    box = Outbox(path)
    run = planned_run(box)
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; from d1sim.simulator.delivery.outbox import Outbox; "
            "from d1sim.simulator.delivery.lease import RunLease\n"
            "with RunLease(Outbox(sys.argv[1]), sys.argv[2]):\n"
            "    print('held', flush=True); time.sleep(60)"
        ), str(path), run],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert box.run(run).status == "running"  # type: ignore[union-attr]
        with pytest.raises(RunBusy):
            RunLease(box, run).take()
        holder.kill()
        holder.wait(10)
        assert box.run(run).status == "interrupted"  # type: ignore[union-attr]
        RunLease(box, run).take()  # on this machine a dead holder frees the run at once
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()  # type: ignore[union-attr]


def test_the_same_replay_started_twice_is_refused_with_exit_2(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    release = threading.Event()

    def held(conn: socket.socket) -> None:
        release.wait(20)
        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    db = tmp_path / "d1sim.db"
    with raw_server(held) as (url, _):
        args = ["replay", "happy-path", "--target", url, "--db", str(db), "--no-progress", "--concurrency", "1"]
        codes: list[int] = []
        first = threading.Thread(target=lambda: codes.append(main(args)))
        first.start()
        try:
            with Outbox(db) as box:
                deadline = time.monotonic() + 20
                while not any(r.status == "running" for r in box.runs()) and time.monotonic() < deadline:
                    time.sleep(0.02)
                [run] = box.runs()
            assert run.status == "running"
            assert main(args) == 2  # the same command again: it would resume the live run
            assert main([*args, "--resume", run.id]) == 2
        finally:
            release.set()
            first.join(60)
    assert codes == [0]
    err = capsys.readouterr().err
    assert err.count(f"run {run.id} is being sent right now by another d1sim") == 2 and "Traceback" not in err


@pytest.mark.parametrize(
    ("numbers", "message"),
    [
        ({"factor": 1e308}, "backoff factor must be between 1 and 100"),
        ({"factor": float("nan")}, "backoff factor"),
        ({"base": float("inf")}, "backoff base must be between 0 and 86400 s"),
        ({"cap": 1e300}, "backoff cap"),
        ({"max_attempts": 10**9}, "max attempts must be between 1 and 1000"),
    ],
)
def test_retry_policy_numbers_out_of_range_are_refused(numbers: dict[str, float], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        RetryPolicy(**numbers)  # type: ignore[arg-type]


def test_the_largest_allowed_policy_never_overflows() -> None:
    policy = RetryPolicy(max_attempts=1000, base=86400, factor=100, cap=86400)
    assert policy.ceiling(1000) == 86400 and 0 <= policy.delay(1000, random.Random(1)) <= 86400
