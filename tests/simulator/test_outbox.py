"""The outbox keeps every planned delivery and attempt, streams what is owed, hides secrets."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.outbox import SCHEMA, Attempt, Outbox
from d1sim.simulator.errors import UsageError
from tests.simulator.outbox_files import old_outbox


def planned(n: int, keys: int = 3, start: int = 0) -> list[Delivery]:
    """``n`` deliveries spread over ``keys`` keys, due one virtual second apart."""
    return [
        Delivery(
            seq=i,
            due=float(i),
            body=orjson.dumps({"operations": [{"seq": i}]}),
            card_ids=(f"card-{i % keys}",),
            statuses=("DATA_PREPARED",),
            correlation_id=f"corr-{i}",
            scenario="happy",
            key=f"card-{i % keys}",
            fault="duplicate" if i % 7 == 0 else None,
        )
        for i in range(start, start + n)
    ]


@pytest.fixture
def box(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "box" / "d1sim.db")


def test_creates_parent_dir_and_uses_wal(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "deep" / "er" / "d1sim.db")
    assert box.path is not None and box.path.exists()
    mode = box.db.fetchone("PRAGMA journal_mode")[0]  # type: ignore[index]
    sync = box.db.fetchone("PRAGMA synchronous")[0]  # type: ignore[index]
    assert (mode, sync) == ("wal", 1)  # 1 is NORMAL


def test_default_path_is_under_dot_d1sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Outbox().close()
    assert (tmp_path / ".d1sim" / "d1sim.db").is_file()


def test_round_trip_keeps_every_field(box: Outbox) -> None:
    run = box.create_run("happy", "http://r/", {"concurrency": 4}, fingerprint="f1")
    deliveries = planned(10)
    assert box.add_deliveries(run, deliveries, batch=3) == 10
    stored = list(box.owed(run))
    assert [s.delivery for s in stored] == deliveries
    assert {s.state for s in stored} == {"pending"} and {s.run_id for s in stored} == {run}
    page = box.deliveries(run, limit=4, offset=4)
    assert [d.delivery.seq for d in page] == [4, 5, 6, 7]
    assert box.summary(run) == {"pending": 10, "delivered": 0, "dead": 0}


def test_run_ids_are_short_and_readable(box: Outbox) -> None:
    ids = {box.create_run("x", "http://r/", {}) for _ in range(20)}
    assert len(ids) == 20
    assert all(re.fullmatch(r"r-\d{8}-[0-9a-f]{6}", run_id) for run_id in ids)


def test_runs_and_statuses(box: Outbox) -> None:
    first = box.create_run("a", "http://r/", {"x": 1})
    second = box.create_run("b", "http://r/", {})
    assert box.run(first).status == "planning"  # type: ignore[union-attr]
    box.add_deliveries(first, planned(2))
    listed = {run.id: run for run in box.runs()}
    assert listed[first].status == "ready" and listed[first].options == {"x": 1}
    assert listed[second].status == "planning" and box.run("r-nope") is None


def test_status_is_what_run_shows_and_names_a_missing_run(box: Outbox) -> None:
    run = box.create_run("a", "http://r/", {})
    assert box.status(run) == "planning"
    box.add_deliveries(run, planned(1))
    assert box.status(run) == "ready"
    box.set_run_status(run, "running")  # no sender holds the lease: shown as interrupted
    assert box.status(run) == box.run(run).status == "interrupted"  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="no run r-nope in "):
        box.status("r-nope")


def test_attempts_are_recorded_in_order_with_state(box: Outbox) -> None:
    run = box.create_run("a", "http://r/", {})
    box.add_deliveries(run, planned(1))
    (item,) = box.owed(run)
    box.record_attempt(item.id, Attempt(1.0, 503, 12.5, b"busy", None), "pending", 99.0)
    box.record_attempt(item.id, Attempt(2.0, 200, 3.0, b"x" * 900, None, "not 204"), "delivered")
    stored = box.delivery(item.id)
    assert stored is not None and stored.state == "delivered" and stored.attempts == 2
    assert (stored.last_status, stored.next_attempt_at) == (200, None)
    assert [(a.number, a.status_code) for a in stored.history] == [(1, 503), (2, 200)]
    assert len(stored.history[1].response) == 500 and stored.history[1].warning == "not 204"
    assert list(box.owed(run)) == [] and box.delivery(12345) is None


def test_mark_and_requeue_keep_history(box: Outbox) -> None:
    run = box.create_run("a", "http://r/", {})
    box.add_deliveries(run, planned(3))
    one, two, three = box.owed(run)
    box.record_attempt(one.id, Attempt(1.0, 400, 1.0), "dead")
    box.mark_delivered(two.id)
    box.mark_dead(three.id)
    assert box.summary(run) == {"pending": 0, "delivered": 1, "dead": 2}
    again = box.requeue(one.id)
    assert (again.state, again.attempts, len(again.history)) == ("pending", 0, 1)
    box.record_attempt(one.id, Attempt(2.0, 204, 1.0), "delivered")
    assert [a.number for a in box.delivery(one.id).history] == [1, 2]  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="no delivery with id 999"):
        box.requeue(999)
    with pytest.raises(ValueError, match="unknown delivery state"):
        box.record_attempt(one.id, Attempt(3.0, 204, 1.0), "sent")


def _settled_box(path: Path) -> tuple[Outbox, list[int]]:
    """An outbox whose three deliveries are dead after a try, delivered, and retrying."""
    box = Outbox(path)
    run = box.create_run("a", "http://r/", {})
    box.add_deliveries(run, planned(3))
    one, two, three = box.owed(run)
    box.record_attempt(one.id, Attempt(1.0, 400, 1.0), "dead")
    box.mark_delivered(two.id)
    box.record_attempt(three.id, Attempt(1.0, 503, 1.0), "pending", next_attempt_at=99.0)
    return box, [one.id, two.id, three.id]


def test_requeue_many_leaves_the_outbox_as_requeue_one_by_one_does(tmp_path: Path) -> None:
    single, ids = _settled_box(tmp_path / "single.db")
    many, _ = _settled_box(tmp_path / "many.db")
    for i in ids:
        single.requeue(i)
    assert many.requeue_many([*ids, ids[0]]) == 3  # an id given twice counts once
    requeued = [many.delivery(i) for i in ids]
    # The same rows but for the run id (each box made its own).
    assert [replace(d, run_id="r") for d in requeued if d] == [
        replace(d, run_id="r") for d in map(single.delivery, ids) if d]
    assert {(d.state, d.attempts, d.next_attempt_at) for d in requeued if d} == {("pending", 0, None)}
    assert [len(d.history) for d in requeued if d] == [1, 0, 1]  # history kept
    assert many.requeue_many([]) == 0


def test_requeue_many_is_one_transaction(tmp_path: Path) -> None:
    box, ids = _settled_box(tmp_path / "o.db")
    before = [box.delivery(i) for i in ids]
    with pytest.raises(UsageError, match=r"no delivery with id 998, 999 in .*none requeued"):
        box.requeue_many([ids[0], 998, ids[2], 999])
    assert [box.delivery(i) for i in ids] == before  # the ids that exist were rolled back too
    statements: list[str] = []
    box.db._db.set_trace_callback(statements.append)
    box.requeue_many(ids)
    box.db._db.set_trace_callback(None)
    assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]


def test_deliveries_filter_by_state(box: Outbox) -> None:
    run = box.create_run("a", "http://r/", {})
    box.add_deliveries(run, planned(6))
    for item in list(box.owed(run))[::2]:
        box.mark_dead(item.id)
    assert [d.delivery.seq for d in box.deliveries(run, state="dead")] == [0, 2, 4]
    assert [d.delivery.seq for d in box.deliveries(run, state="pending", limit=2)] == [1, 3]


def test_owed_is_ordered_by_due_then_seq(box: Outbox) -> None:
    run = box.create_run("a", "http://r/", {})
    late = [Delivery(i, 5.0 - i % 2, b"{}", (), (), f"c{i}", "s", "k") for i in range(6)]
    box.add_deliveries(run, late)
    assert [(s.delivery.due, s.delivery.seq) for s in box.owed(run, chunk=2)] == [
        (4.0, 1),
        (4.0, 3),
        (4.0, 5),
        (5.0, 0),
        (5.0, 2),
        (5.0, 4),
    ]


def test_owed_streams_in_chunks_without_loading_everything(box: Outbox, tmp_path: Path) -> None:
    run = box.create_run("a", "http://r/", {})
    box.add_deliveries(run, planned(2500), batch=1000)
    stream = box.owed(run, chunk=100)
    first = next(stream)
    # Another connection settles everything: only the chunk already read can still come out.
    other = Outbox(tmp_path / "box" / "d1sim.db")
    with other.transaction():
        for item in other.owed(run):
            other.mark_delivered(item.id)
    rest = list(stream)
    assert first.delivery.seq == 0 and len(rest) == 99


def test_owed_never_skips_nor_repeats_while_settling(box: Outbox) -> None:
    run = box.create_run("a", "http://r/", {})
    box.add_deliveries(run, planned(250))
    seen = []
    for item in box.owed(run, chunk=7):
        seen.append(item.delivery.seq)
        if item.delivery.seq % 3:
            box.mark_delivered(item.id)
    assert seen == list(range(250))
    assert [s.delivery.seq for s in box.owed(run, limit=3)] == [0, 3, 6]
    assert len(list(box.owed(run, chunk=10, limit=25))) == 25


def test_find_run_resumes_only_planned_unfinished_runs(box: Outbox) -> None:
    half = box.create_run("happy", "http://r/", {}, fingerprint="fp")
    assert box.find_run("happy", "http://r/", "fp") is None  # killed while planning
    run = box.create_run("happy", "http://r/", {}, fingerprint="fp")
    box.add_deliveries(run, planned(2))
    assert box.find_run("happy", "http://r/", "fp") == run != half
    assert box.find_run("happy", "http://r/", "other") is None
    assert box.find_run("happy", "http://elsewhere/", "fp") is None
    box.set_run_status(run, "done")
    assert box.find_run("happy", "http://r/", "fp") is None
    unsigned = box.create_run("x", "http://r/", {})
    box.add_deliveries(unsigned, [])
    assert box.find_run("x", "http://r/", None) == unsigned


def test_secret_options_never_reach_the_file(box: Outbox) -> None:
    options = {
        "auth": {"mode": "oauth2", "client_secret": "s3cr3t-value", "token_url": "http://r/token"},
        "sign_secret": "whsec_c2VjcmV0c2VjcmV0",
        "token": "bearer-value",
        "headers": [{"Authorization": "Bearer bearer-value"}],
        "concurrency": 4,
    }
    run = box.create_run("a", "http://r/", options)
    box.close()
    stored = Outbox(box.path).run(run)  # type: ignore[arg-type]
    assert stored is not None and stored.options["auth"]["token_url"] == "http://r/token"
    assert stored.options["auth"]["client_secret"] == "***" and stored.options["token"] == "***"
    raw = b"".join(p.read_bytes() for p in box.path.parent.iterdir())  # type: ignore[union-attr]
    for secret in (b"s3cr3t-value", b"c2VjcmV0c2VjcmV0", b"bearer-value"):
        assert secret not in raw


def test_a_reader_sees_commits_while_a_writer_is_busy(box: Outbox) -> None:
    run = box.create_run("a", "http://r/", {})
    box.add_deliveries(run, planned(5))
    reader = Outbox(box.path)  # type: ignore[arg-type]
    with box.transaction():
        for item in box.owed(run):
            box.mark_delivered(item.id)
        # WAL: the reader is not blocked, and sees the last committed state.
        assert reader.summary(run)["pending"] == 5
    assert reader.summary(run)["delivered"] == 5


def test_a_failed_transaction_is_rolled_back(box: Outbox) -> None:
    run = box.create_run("a", "http://r/", {})
    box.add_deliveries(run, planned(2))
    with pytest.raises(RuntimeError), box.transaction():
        box.mark_dead(next(box.owed(run)).id)
        raise RuntimeError("crash")
    assert box.summary(run)["dead"] == 0


def test_refuses_an_outbox_written_by_a_newer_d1sim(tmp_path: Path) -> None:
    path = tmp_path / "d1sim.db"
    Outbox(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE d1sim_schema SET version = 99 WHERE component = 'outbox'")
    with pytest.raises(UsageError, match="outbox schema version 99 was written by a newer d1sim"):
        Outbox(path)


def test_an_outbox_made_before_schema_versions_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "d1sim.db"
    with sqlite3.connect(path) as db:  # what d1sim 0.x wrote: its tables and PRAGMA user_version
        db.executescript(SCHEMA.migrations[0] + "PRAGMA user_version=1;")
        db.execute("INSERT INTO runs VALUES ('r-old', '2025', 'old', 'http://r/', '{}', NULL, 'done')")
    box = Outbox(path)
    assert [run.id for run in box.runs()] == ["r-old"]
    assert box.db.version("outbox") == SCHEMA.version


def test_memory_outbox_for_tests() -> None:
    box = Outbox(":memory:")
    run = box.create_run("a", "http://r/", {})
    assert box.add_deliveries(run, planned(3)) == 3 and box.path is None


def test_a_version_2_outbox_opens_and_its_old_attempts_have_no_headers(tmp_path: Path) -> None:
    path = old_outbox(tmp_path / "d1sim.db", 2)
    with Outbox(path) as box:
        assert box.db.version("outbox") == SCHEMA.version
        box.record_attempt(1, Attempt(2.0, 204, 1.0, request_headers=(("Authorization", "Bearer abc123"),
                                                                        ("x-correlation-id", "corr-1"))))
        old, new = box.delivery(1).history  # type: ignore[union-attr]
    assert old.request_headers is None
    assert new.request_headers == (("Authorization", "Bearer ***"), ("x-correlation-id", "corr-1"))


def test_request_headers_are_masked_before_they_are_stored(box: Outbox) -> None:
    run = box.create_run("a", "http://r/", {})
    box.add_deliveries(run, planned(1))
    sent = (("Authorization", "Basic ZDE6czNjcmV0"), ("Cookie", "session=abc123"), ("X-Api-Key", "k-123456"),
            ("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="))
    box.record_attempt(1, Attempt(1.0, 204, 1.0, request_headers=sent))
    with sqlite3.connect(box.path) as db:  # type: ignore[arg-type]
        [(stored,)] = db.execute("SELECT request_headers FROM attempts").fetchall()
    assert orjson.loads(stored) == [["Authorization", "Basic ***"], ["Cookie", "***"], ["X-Api-Key", "***"],
                                    ["webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="]]
