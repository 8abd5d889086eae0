"""The replay's writer process: it stores the plan, commits what the sender hands over, and a
key's next delivery waits for that commit; a writer that dies is said, and what it committed stays."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import httpx
import pytest

from d1sim.contracts.scenario.expansion import planned_deliveries
from d1sim.contracts.scenario.loading import load_scenario_file
from d1sim.simulator import lifeline
from d1sim.simulator.cli.dispatch import main
from d1sim.simulator.delivery.driver import Driver, ThreadWorkers
from d1sim.simulator.delivery.outbox import Attempt, AttemptRow, Outbox, StoredDelivery
from d1sim.simulator.delivery.sender import Poster, SenderConfig, build_client
from d1sim.simulator.errors import UsageError
from d1sim.simulator.lifeline import Child
from d1sim.simulator.replay import ahead
from d1sim.simulator.replay import writer as writer_module
from d1sim.simulator.replay.planning import Streamed
from d1sim.simulator.replay.writer import DONE, Writer, started_ahead
from tests.simulator.plans import many_cards_replay, planned
from tests.simulator.senders import http_server

URL = "http://receiver.test/hook"
HEADERS = (("Content-Type", "application/json"), ("Authorization", "Bearer ****"))


def parts(writer: Writer, limit: float = 30.0) -> list[StoredDelivery]:
    """Every stored part the writer hands over, until the plan is complete (bounded)."""
    got: list[StoredDelivery] = []
    deadline = time.monotonic() + limit
    while (part := writer.part()) is not DONE:
        assert time.monotonic() < deadline, "the plan never completed"
        if part is None:
            time.sleep(0.005)
        else:
            got += part  # type: ignore[arg-type]
    return got


def answered(items: list[StoredDelivery]) -> list[AttemptRow]:
    return [(item.id, Attempt(time.time(), 204, 1.5, b"ok", request_headers=HEADERS), "delivered", None)
            for item in items]


def test_the_writer_stores_the_plan_and_commits_what_it_is_handed(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        run = box.create_run("s", URL, {})
        writer = Writer(tmp_path / "o.db", run, partial(planned, 600), after=-1)
        try:
            stored = parts(writer)
            assert [s.delivery.seq for s in stored] == list(range(600))
            assert all(box.delivery(s.id).delivery == s.delivery for s in stored[::50])  # type: ignore[union-attr]
            ticket = writer.record(answered(stored[:10]))
            assert writer.committed(timeout=10) >= ticket
        finally:
            writer.close()
        assert box.summary(run) == {"pending": 590, "delivered": 10, "dead": 0}
        assert box.run(run).status == "ready"  # type: ignore[union-attr]
        (attempt,) = box.delivery(stored[0].id).history  # type: ignore[union-attr]
        assert (attempt.number, attempt.status_code, attempt.response) == (1, 204, b"ok")
        assert attempt.request_headers == HEADERS


def test_what_was_handed_over_is_committed_before_the_writer_ends(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        run = box.create_run("s", URL, {})
        writer = Writer(tmp_path / "o.db", run, partial(planned, 300), after=-1)
        stored = parts(writer)
        for n in range(0, 300, 30):
            writer.record(answered(stored[n:n + 30]))
        writer.close()  # at once: no wait for the commits
        assert box.summary(run) == {"pending": 0, "delivered": 300, "dead": 0}
        assert writer.process.returncode == 0


def test_a_writer_that_dies_is_said_and_what_it_committed_stays(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        run = box.create_run("s", URL, {})
        writer = Writer(tmp_path / "o.db", run, partial(planned, 300), after=-1)
        try:
            stored = parts(writer)
            ticket = writer.record(answered(stored[:5]))
            assert writer.committed(timeout=10) >= ticket
            os.kill(writer.process.pid, signal.SIGKILL)
            with pytest.raises(UsageError, match=r"writer process stopped unexpectedly \(exit code -9\).*resume"):
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    writer.record(answered(stored[5:6]))
                    writer.committed(timeout=0.1)
        finally:
            writer.close()
        assert box.summary(run)["delivered"] >= 5


def test_without_a_writer_process_the_plan_is_made_and_stored_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_start(module: str) -> None:
        raise OSError("no interpreter to start")

    monkeypatch.setattr(writer_module, "spawn", cannot_start)
    with Outbox(tmp_path / "o.db") as box:
        run = box.create_run("s", URL, {})
        stream = Streamed(box, run, partial(planned, 700))
        assert stream.recorder is None  # the sender records through its own connection
        seqs = [item.delivery.seq for item in stream if item is not None]
        stream.close()
        assert seqs == list(range(700)) and box.summary(run)["pending"] == 700
        assert box.run(run).status == "ready"  # type: ignore[union-attr]


class LaggingRecorder:
    """Commits to the outbox only ``lag`` seconds after a hand-over, as a busy writer would."""

    def __init__(self, outbox: Outbox, lag: float) -> None:
        self.outbox, self.lag = outbox, lag
        self.handed: list[tuple[float, list[AttemptRow]]] = []
        self.acked = 0
        self.committed_at: dict[int, float] = {}  # delivery id: when its answer was committed

    def record(self, rows: list[AttemptRow]) -> int:
        self.handed.append((time.monotonic(), rows))
        return len(self.handed)

    def committed(self, timeout: float = 0.0) -> int:
        if timeout and self.acked < len(self.handed):
            time.sleep(min(timeout, self.lag))
        while self.acked < len(self.handed) and time.monotonic() - self.handed[self.acked][0] >= self.lag:
            rows = self.handed[self.acked][1]
            self.outbox.record_attempts(rows, masked=True)
            self.committed_at.update((row[0], time.monotonic()) for row in rows)
            self.acked += 1
        return self.acked


def test_a_keys_next_delivery_waits_for_the_commit_of_its_previous_answer() -> None:
    posted: dict[str, float] = {}
    lock = threading.Lock()

    def receive(request: httpx.Request) -> httpx.Response:
        with lock:
            posted[request.headers["x-correlation-id"]] = time.monotonic()
        return httpx.Response(204)

    config = SenderConfig(URL, concurrency=4)
    with Outbox(":memory:") as box:
        run = box.create_run("s", URL, {})
        box.add_deliveries(run, planned(24, keys=3))  # three keys, eight deliveries each, in order
        recorder = LaggingRecorder(box, lag=0.02)
        with build_client(config, transport=httpx.MockTransport(receive)) as http:
            driver = Driver(box, config, ThreadWorkers(Poster(config, http), config.concurrency, config.timeout),
                            clock=time.monotonic, sleep=time.sleep, rng=random.Random(1), time_scale=0.0,
                            progress=None, recorder=recorder)
            summary = driver.run(box.owed(run), resume=False)
        assert summary.delivered == 24 and box.summary(run)["delivered"] == 24
        stored = {s.delivery.correlation_id: s for s in box.deliveries(run, limit=100)}
    for n in range(3, 24):  # each delivery went out after its key's previous one was committed
        before = stored[f"corr-{n - 3}"]
        assert posted[f"corr-{n}"] > recorder.committed_at[before.id]


@pytest.mark.slow
def test_ctrl_c_keeps_the_answers_in_hand_and_leaves_no_writer_behind(tmp_path: Path) -> None:
    with http_server(lambda handler, seen: (204, {}, b"")) as (url, seen):
        db, scenario, command = many_cards_replay(tmp_path, url)
        # A session of its own: SIGINT to its group is what Ctrl-C in a terminal does.
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while len(seen["requests"]) < 300 and time.monotonic() < deadline and child.poll() is None:
                time.sleep(0.01)
            os.killpg(child.pid, signal.SIGINT)
            _, err = child.communicate(timeout=60)
        finally:
            child.kill()
        assert child.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        with pytest.raises(ProcessLookupError):  # the writer ended with the replay
            os.killpg(child.pid, 0)
        with Outbox(db) as box:
            (run,) = box.runs()
            delivered = box.summary(run.id)["delivered"]
        posted = len(seen["requests"])
        # Every answer in hand was committed: at most the POSTs in flight are not.
        assert 300 <= delivered <= posted and posted - delivered <= 4
        again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert again.returncode == 0, again.stderr
        total = sum(1 for _ in planned_deliveries(load_scenario_file(scenario)))
        with Outbox(db) as box:
            assert box.summary(run.id) == {"pending": 0, "delivered": total, "dead": 0} and total > 1000


def test_a_writer_started_ahead_serves_the_first_writer_and_an_unused_one_ends(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        run = box.create_run("s", URL, {})
        with started_ahead():
            (early,) = ahead._started
            writer = Writer(tmp_path / "o.db", run, partial(planned, 150), after=-1)
            assert writer.process is early.process and not ahead._started
            assert len(parts(writer)) == 150
            writer.close()
        with started_ahead():
            (unused,) = ahead._started
        assert unused.process.returncode == 0 and not ahead._started


@pytest.mark.slow
def test_a_replay_that_fails_before_planning_leaves_no_writer_behind(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-m", "d1sim", "replay", str(tmp_path / "missing.yaml"), "--target",
                              "http://127.0.0.1:9/hook", "--db", str(tmp_path / "o.db")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 2 and "missing.yaml" in err and "Traceback" not in err
    with pytest.raises(ProcessLookupError):  # the writer started ahead ended with it
        os.killpg(child.pid, 0)


@pytest.mark.parametrize(("words", "starts"), [
    (["bulk-file", "--target", URL], True),
    (["bulk-file", "--target", URL, "--time-scale", "0"], True),
    (["bulk-file", "--target", URL, "--time-scale=3600"], False),
    (["bulk-file", "--target", URL, "--db", ":memory:"], False),
    (["--list"], False),
    (["bulk-file", "--help"], False),
])
def test_the_command_line_starts_a_writer_only_for_a_replay_that_will_stream(words: list[str], starts: bool) -> None:
    ahead.start(words)
    try:
        assert bool(ahead._started) is starts
    finally:
        ahead.release()
    assert not ahead._started


def test_a_command_line_error_lets_the_early_writer_go(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Child] = []

    def spawn(module: str) -> Child:
        started.append(lifeline.spawn(module))
        return started[-1]

    monkeypatch.setattr(ahead, "spawn", spawn)
    with pytest.raises(SystemExit):  # argparse: an option that takes a number given none
        main(["replay", "bulk-file", "--target", URL, "--concurrency"])
    (child,) = started
    assert child.process.returncode == 0 and not ahead._started


def test_an_outbox_the_writer_cannot_open_is_said(tmp_path: Path) -> None:
    (tmp_path / "folder.db").mkdir()  # a folder where the outbox file should be
    writer = Writer(tmp_path / "folder.db", "r-1", partial(planned, 10), after=-1)
    try:
        with pytest.raises(UsageError, match=r"the outbox cannot be written: .*folder\.db.*resume"):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                writer.part()
                time.sleep(0.01)
    finally:
        writer.close()
    assert writer.process.returncode == 1
