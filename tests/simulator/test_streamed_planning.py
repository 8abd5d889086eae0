"""Sending while planning: the writer process hands parts over, each stored before it is sent.

The plans here are module-level generators given as ``functools.partial`` (they travel to the
writer process by pickle): slow ones show sending starts before the plan is complete, a failing
one that its error reaches the sender with what was stored kept, and a half-stored run that
planning resumes after what is already there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import orjson
import pytest

from d1sim.contracts.scenario.expansion import planned_deliveries
from d1sim.contracts.scenario.loading import load_scenario_file
from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery import terms
from d1sim.simulator.delivery.outbox import Outbox, StoredDelivery
from d1sim.simulator.errors import UsageError
from d1sim.simulator.replay.planning import HAND_OVER, Streamed, can_stream
from tests.simulator.plans import many_cards_replay, planned
from tests.simulator.senders import http_server


def items(stream: Streamed, limit: float = 30.0) -> Iterator[StoredDelivery]:
    """The stream's deliveries; a None ("more later") waits a little, within a bound. The stream
    (and its writer process) is closed at the end."""
    deadline = time.monotonic() + limit
    try:
        for item in stream:
            assert time.monotonic() < deadline, "the plan never completed"
            if item is None:
                time.sleep(0.005)
            else:
                yield item
    finally:
        stream.close()


def test_sending_starts_before_the_plan_is_complete(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        assert can_stream(box)
        run = box.create_run("s", "http://127.0.0.1:9/hook", {})
        statuses, seqs = [], []
        for item in items(Streamed(box, run, partial(planned, 3 * HAND_OVER, pause=0.3))):
            statuses.append(box.run(run).status)  # type: ignore[union-attr]
            seqs.append(item.delivery.seq)
            stored = box.delivery(item.id)
            assert stored is not None and stored.delivery == item.delivery  # stored before it is sent
        assert statuses[0] == "planning" and box.run(run).status == "ready"  # type: ignore[union-attr]
    assert seqs == list(range(3 * HAND_OVER))


def test_a_planning_error_reaches_the_sender_and_what_was_stored_stays(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        run = box.create_run("s", "http://127.0.0.1:9/hook", {})
        got = []
        with pytest.raises(UsageError, match=r"scenario.yaml:3:1: too many \(cards.count\)"):
            for item in items(Streamed(box, run, partial(planned, 3 * HAND_OVER, fail_at=HAND_OVER + 10))):
                got.append(item.delivery.seq)
        assert got == list(range(HAND_OVER)) and box.summary(run)["pending"] == HAND_OVER
        assert box.run(run).status == "planning"  # type: ignore[union-attr]


def test_an_interrupted_plan_resumes_after_what_is_stored(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        run = box.create_run("s", "http://127.0.0.1:9/hook", {})
        box.add_deliveries(run, planned(700), complete=False)  # stored before the interruption
        sent = [d.id for d in box.owed(run, limit=300)]
        for delivery_id in sent:
            box.mark_delivered(delivery_id)
        seqs = [item.delivery.seq for item in items(Streamed(box, run, partial(planned, 1600)))]
        assert box.summary(run) == {"pending": 1300, "delivered": 300, "dead": 0}
        assert box.run(run).status == "ready"  # type: ignore[union-attr]
    assert seqs == list(range(300, 1600))  # what was owed, then the rest: nothing twice


@pytest.mark.slow
def test_a_replay_killed_while_planning_resumes_and_delivers_everything(tmp_path: Path) -> None:
    with http_server(lambda handler, seen: (204, {}, b"")) as (url, seen):
        db, scenario, command = many_cards_replay(tmp_path, url)
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            # Planning 60,000 operations takes a second or more; sending starts with its first part.
            while not seen["requests"] and time.monotonic() < deadline and child.poll() is None:
                time.sleep(0.01)
            with Outbox(db) as box:
                status = box.runs()[0].status
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            child.kill()
        assert status == "planning", "killed too late to test a resume of planning"
        again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert again.returncode == 0, again.stderr
        assert "(resumed)" in again.stdout
        with Outbox(db) as box:
            (run,) = box.runs()
            total = sum(1 for _ in planned_deliveries(load_scenario_file(scenario)))
            assert box.summary(run.id) == {"pending": 0, "delivered": total, "dead": 0} and total > 500
            assert run.status == "done"
    posted = {(h["x-correlation-id"]) for h, _ in seen["requests"]}
    assert len(posted) == total  # every delivery reached the receiver (some twice: at least once)


def test_a_streamed_plan_is_indexed_for_search_as_a_stored_one_is(tmp_path: Path) -> None:
    body = orjson.dumps({"operations": [{"cardId": "card-7", "operationId": "op-7",
                                          "details": {"issuerRequestId": "REQ-7"}}]})
    plan = [Delivery(i, 0.0, body if i == 7 else b"{}", (f"c{i}",), ("X",), f"corr-{i}", "s", f"c{i}")
            for i in range(20)]
    with Outbox(tmp_path / "o.db") as box:
        run = box.create_run("s", "http://127.0.0.1:9/hook", {})
        stored = {item.delivery.seq: item.id for item in items(Streamed(box, run, partial(iter, plan)))}
        for term in ("card-7", "op-7", "REQ-7"):
            found = box.db.fetchall(terms.MATCHING, (terms.token(term),))
            assert found == [(stored[7],)]
