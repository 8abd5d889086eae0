"""Search and card timelines find through the outbox's id index what a scan of the bodies finds."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery import terms
from d1sim.simulator.delivery.outbox import Outbox
from d1sim.simulator.delivery.terms import MATCHING, token
from d1sim.simulator.ui.queries import _COLUMNS, _NAMING, OutboxReader
from d1sim.simulator.ui.search import search
from tests.simulator.outbox_files import old_outbox

# Few ids, some prefixes of others: an index or a scan that matched "REQ-1" in "REQ-10" would show.
IDS = ["c-1", "c-10", "op-1", "REQ-1", "REQ-10", "x"]
_ID = st.sampled_from(IDS)
_OPERATION = st.fixed_dictionaries({}, optional={
    "cardId": _ID, "operationId": _ID, "issuerRequestId": _ID,
    "details": st.fixed_dictionaries({}, optional={"issuerRequestId": _ID, "status": st.just("DATA_PREPARED")}),
})
_BODY = st.one_of(
    st.lists(_OPERATION, max_size=3).map(lambda ops: orjson.dumps({"operations": ops})),
    st.sampled_from([b"not json", b'{"operations": "c-1"}', b'["c-1"]', b'{"cardId": "c-1"}']),
)
_DELIVERY = st.tuples(st.lists(_ID, max_size=2), _BODY)


def _outbox(folder: Path, items: list[tuple[list[str], bytes]], dropped: set[int]) -> Path:
    path = folder / "d1sim.db"
    with Outbox(path) as box:
        run = box.create_run("prop", "http://127.0.0.1:9/hook", {})
        box.add_deliveries(run, [Delivery(i, float(i), body, tuple(cards), ("DATA_PREPARED",), f"corr-{i}", "prop",
                                          f"k-{i}") for i, (cards, body) in enumerate(items, 1)])
        box.drop(dropped)
    return path


@given(st.lists(_DELIVERY, max_size=8), st.sets(st.integers(1, 8), max_size=3))
def test_the_index_finds_what_scanning_the_bodies_finds(
    items: list[tuple[list[str], bytes]], dropped: set[int]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _outbox(Path(folder), items, dropped)
        indexed, scanning = OutboxReader(path), OutboxReader(path)
        scanning.has_terms = False  # the way files of an older d1sim are read
        for text in IDS:
            assert search(indexed, text) == search(scanning, text), text
            assert indexed.card_deliveries(text) == scanning.card_deliveries(text), text
        kept = {row[0] for row in indexed.db.execute("SELECT id FROM deliveries")}
        for text in IDS:
            named = {row[0] for row in indexed.db.execute(MATCHING, (token(text),))}
            assert named <= kept, "a dropped delivery is still in the index"
        indexed.close()
        scanning.close()


def test_search_and_card_timelines_are_index_lookups(tmp_path: Path) -> None:
    path = old_outbox(tmp_path / "d1sim.db", 1)
    Outbox(path).close()
    reader = OutboxReader(path)
    where, args = reader._carrying("c-old-1")
    for sql, bound in ((f"SELECT {_COLUMNS} FROM deliveries WHERE {where} ORDER BY run_id, seq", args),
                       (f"SELECT {_COLUMNS} FROM deliveries WHERE {_NAMING} ORDER BY id", [token("REQ-old-1")])):
        plan = " / ".join(row[3] for row in reader.db.execute("EXPLAIN QUERY PLAN " + sql, bound))
        assert "SCAN deliveries" not in plan and "SCAN delivery_terms VIRTUAL TABLE INDEX 0:M" in plan, plan


def test_opening_an_older_outbox_indexes_what_it_holds(tmp_path: Path) -> None:
    path = old_outbox(tmp_path / "d1sim.db", 3)
    Outbox(path).close()  # any d1sim command that opens it migrates it
    with sqlite3.connect(path) as db:
        assert [db.execute(MATCHING, (token(t),)).fetchall() for t in ("c-old-1", "op-old-1", "REQ-old-1")] == [
            [(1,)], [(1,)], [(1,)]]
    reader = OutboxReader(path)
    assert [hit["cardId"] for hit in search(reader, "REQ-old-1")] == ["c-old-1"]
    assert [item.seq for item in reader.card_deliveries("c-old-1")] == [1]


def test_without_fts5_there_is_no_index_and_search_scans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terms, "TABLE", "CREATE VIRTUAL TABLE delivery_terms USING no_such_module(tokens)")
    path = _outbox(tmp_path, [(["c-1"], orjson.dumps({"operations": [{"cardId": "c-1", "operationId": "op-1"}]}))],
                   set())
    reader = OutboxReader(path)
    assert not reader.has_terms
    assert search(reader, "op-1") == [{"cardId": "c-1", "matched": "operationId", "runId": reader.runs()[0].id}]
    assert [item.seq for item in reader.card_deliveries("c-1")] == [1]
