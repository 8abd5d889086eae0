"""Expansion: deterministic bytes, valid and legal bodies, honest expectations, bounded memory."""

from __future__ import annotations

import hashlib
import itertools
import time
import tracemalloc
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from d1sim.contracts.lifecycle.convergence import converge
from d1sim.contracts.lifecycle.model import load_lifecycle
from d1sim.contracts.lifecycle.sequence import SequenceChecker
from d1sim.contracts.notification.validation import notification_validator
from d1sim.contracts.payloads.factory import format_time
from d1sim.contracts.scenario.checks import scenario_problems
from d1sim.contracts.scenario.expansion import (
    CORRELATION_NAMESPACE,
    ORDER_NAMESPACE,
    CardExpectation,
    expand_scenario,
    order_ids,
    planned_deliveries,
    summarize,
)
from d1sim.contracts.scenario.faults import FAULTS, Fault
from d1sim.contracts.scenario.loading import (
    Batching,
    Cards,
    Scenario,
    ScenarioLimits,
    Step,
    bundled_scenarios,
    load_bundled,
    load_scenario_file,
    load_scenario_text,
)
from d1sim.contracts.scenario.timeline import Delivery

MODEL = load_lifecycle()
EVERYTHING = Path(__file__).parents[1] / "data" / "scenarios" / "everything.yaml"
BUNDLED = sorted(bundled_scenarios())
Item = Delivery | CardExpectation


@cache
def expanded(name: str) -> tuple[Item, ...]:
    """A bundled scenario's stream, expanded once per test session."""
    return tuple(expand_scenario(load_bundled(name)))


def digest(items: Iterable[Item]) -> str:
    """One hash over everything a stream says, bodies byte for byte."""
    sha = hashlib.sha256()
    for item in items:
        if isinstance(item, Delivery):
            sha.update(
                repr(
                    (
                        item.seq,
                        item.due,
                        item.card_ids,
                        item.statuses,
                        item.correlation_id,
                        item.scenario,
                        item.key,
                        item.fault,
                    )
                ).encode()
            )
            sha.update(item.body)
        else:
            sha.update(repr(item).encode())
    return sha.hexdigest()


def make(count: int, *, steps: int = 3, mix: bool = True) -> Scenario:
    path = [{"status": s, "after": "1h"} for s in MODEL.main_path[:steps]]
    data = {
        "name": "sized",
        "description": "Sized.",
        "seed": 1,
        "cards": {"count": count},
        "batching": {"mix": mix},
        "steps": path,
    }
    # Laziness is a property of the expansion: lift the loader's run-size limit to test it.
    unlimited = ScenarioLimits(max_notifications=10**9)
    return load_scenario_text(yaml.safe_dump(data), "sized.yaml", unlimited)


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUNDLED)
def test_same_seed_same_bytes_other_seed_other_bytes(name: str) -> None:
    scenario = load_bundled(name)
    assert digest(expand_scenario(scenario)) == digest(expanded(name))
    # The first bodies already differ: no need to expand a bulk scenario a third time.
    other = itertools.islice(expand_scenario(scenario, seed=scenario.seed + 1), 50)
    assert digest(other) != digest(expanded(name)[:50])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_any_seed_replays_identically_with_every_fault(seed: int) -> None:
    scenario = load_scenario_file(EVERYTHING)
    assert digest(expand_scenario(scenario, seed=seed)) == digest(
        expand_scenario(scenario, seed=seed)
    )


def test_start_moves_payload_times_not_dues() -> None:
    scenario = load_bundled("happy-path")
    start = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    moved = [d for d in expand_scenario(scenario, start=start) if isinstance(d, Delivery)]
    default = [d for d in expanded("happy-path") if isinstance(d, Delivery)]
    assert [d.due for d in moved] == [d.due for d in default]
    assert orjson.loads(moved[0].body)["operations"][0]["startTime"] == format_time(start)


def test_payload_times_follow_the_virtual_clock() -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for item in expand_scenario(load_bundled("shipment-tracking"), start=start):
        if isinstance(item, Delivery):
            for op in orjson.loads(item.body)["operations"]:
                stamp = op["details"].get("shipment", {}).get("lastUpdatedAt")
                if stamp:
                    assert stamp == format_time(start + timedelta(seconds=item.due))


# --- what is sent is valid, and legal apart from the labelled faults -----------------------------


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_bodies_validate_and_form_legal_lifecycles(name: str) -> None:
    default, strict = notification_validator(False), notification_validator(True)
    checker, problems = SequenceChecker(), []
    for item in expanded(name):
        if not isinstance(item, Delivery):
            continue
        body = orjson.loads(item.body)
        assert default.is_valid(body), (item.seq, list(default.iter_problems(body))[:3])
        if item.fault is None:
            if all(
                MODEL.is_known(status) for status in item.statuses
            ):  # unknown: true steps are not lint errors
                assert strict.is_valid(body), (item.seq, list(strict.iter_problems(body))[:3])
            for i, op in enumerate(body["operations"]):
                problems += checker.add(op, where=(item.seq, i))
    problems += list(checker.finish())
    assert [p for _, p in problems if p.is_error] == []


@pytest.mark.parametrize("name", [*BUNDLED, "everything"])
def test_expectations_are_the_convergence_of_what_was_sent(name: str) -> None:
    items = (
        tuple(expand_scenario(load_scenario_file(EVERYTHING)))
        if name == "everything"
        else expanded(name)
    )
    sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    last_seq: dict[str, int] = {}
    expected = {}
    for item in items:
        if isinstance(item, Delivery):
            for card_id, op in zip(
                item.card_ids, orjson.loads(item.body)["operations"], strict=True
            ):
                assert card_id not in expected, "a delivery came after the card's expectation"
                sent[card_id].append(op)
                last_seq[card_id] = item.seq
        else:
            assert item.after_seq == last_seq[item.card_id]
            expected[item.card_id] = item.state
    assert expected.keys() == sent.keys()
    for card_id, ops in sent.items():
        assert expected[card_id] == converge(ops).get(card_id)


def test_unknown_statuses_only_leave_no_known_state() -> None:
    text = (
        "name: only-unknown\ndescription: Nothing known.\nseed: 1\n"
        "steps:\n  - {status: CARD_RETURNED, unknown: true}\n"
    )
    items = list(expand_scenario(load_scenario_text(text, "u.yaml")))
    assert isinstance(items[-1], CardExpectation) and items[-1].state is None


# --- lanes, order and batching -----------------------------------------------------------------


def test_seq_counts_from_one_and_correlation_ids_are_unique() -> None:
    deliveries = [d for d in expanded("duplicates") if isinstance(d, Delivery)]
    assert [d.seq for d in deliveries] == list(range(1, len(deliveries) + 1))
    assert len({d.correlation_id for d in deliveries}) == len(deliveries)


@pytest.mark.parametrize("name", ["duplicates", "bulk-batch"])
def test_ids_are_the_name_based_uuids_of_the_uuid_module(name: str) -> None:
    # Expansion hashes its uuid5s by hand, for speed: the standard library is the oracle.
    scenario = load_bundled(name)
    for d in itertools.islice(planned_deliveries(scenario), 100):
        made = uuid.uuid5(CORRELATION_NAMESPACE, f"{name}:{scenario.seed}:{d.seq}")
        assert d.correlation_id == str(made)
    for index in (0, 1, 99, 12345):
        made = uuid.uuid5(ORDER_NAMESPACE, f"{name}:{scenario.seed}:{index}")
        card_id = "-".join(made.hex[i : i + 4] for i in range(0, 16, 4))
        assert order_ids(name, scenario.seed, index) == (card_id, str(uuid.uuid5(made, "operation")))


@pytest.mark.parametrize(
    "name", ["happy-path", "bulk-batch", "bulk-file", "receiver-outage", "data-exception"]
)
def test_a_lane_keeps_each_card_in_true_order(name: str) -> None:
    lanes: dict[str, list[Delivery]] = defaultdict(list)
    key_of: dict[str, str] = {}
    for item in expanded(name):
        if isinstance(item, Delivery):
            lanes[item.key].append(item)
            for card_id in item.card_ids:
                assert key_of.setdefault(card_id, item.key) == item.key  # one lane per card
    for lane in lanes.values():
        assert [d.due for d in lane] == sorted(d.due for d in lane)
        seen: dict[str, list[str]] = defaultdict(list)
        for item in lane:
            for card_id, status in zip(item.card_ids, item.statuses, strict=True):
                seen[card_id].append(status)
        for statuses in seen.values():
            ranks = [MODEL.rank(s) for s in statuses]
            assert ranks == sorted(ranks)


def test_bulk_batch_packs_ten_operations_of_ten_cards() -> None:
    deliveries = [d for d in expanded("bulk-batch") if isinstance(d, Delivery)]
    assert all(len(d.statuses) == 10 and len(set(d.card_ids)) == 10 for d in deliveries)
    assert len({d.key for d in deliveries}) == 100


def test_without_mixing_a_body_holds_one_card() -> None:
    for item in expand_scenario(make(30, mix=False)):
        if isinstance(item, Delivery):
            assert len(set(item.card_ids)) == 1 and item.key == f"sized:{item.card_ids[0]}"


@pytest.mark.parametrize(
    "window, sizes, dues",
    [
        ("0s", [1, 1, 1, 1, 1, 1], [0, 10, 20, 30, 40, 50]),
        ("15s", [2, 2, 2], [10, 30, 50]),
        ("1m", [4, 2], [30, 50]),
    ],
)
def test_window_gathers_operations_due_close_together(
    window: str, sizes: list[int], dues: list[float]
) -> None:
    data = {
        "name": "w",
        "description": "Window.",
        "seed": 1,
        "cards": {"count": 6, "spacing": "10s"},
        "batching": {"max": 4, "window": window},
        "steps": [{"status": "CARD_PROD_REQUESTED"}],
    }
    deliveries = [
        d
        for d in expand_scenario(load_scenario_text(yaml.safe_dump(data), "w.yaml"))
        if isinstance(d, Delivery)
    ]
    # Cards are grouped four at a time (batching.max), and a body never spans two groups.
    assert [len(d.statuses) for d in deliveries] == sizes
    assert [d.due for d in deliveries] == dues  # a body leaves when its last operation is due


def test_bulk_file_cards_share_a_file_and_keep_their_own_request() -> None:
    files, requests = defaultdict(set), set()
    for item in expanded("bulk-file"):
        if isinstance(item, Delivery):
            for op in orjson.loads(item.body)["operations"]:
                assert op["details"]["inputFileName"] == op["inputFileName"]
                assert op["details"]["issuerRequestId"] == op["issuerRequestId"]
                files[op["inputFileName"]].add(op["cardId"])
                requests.add((op["cardId"], op["issuerRequestId"]))
    assert sorted(len(cards) for cards in files.values()) == [1000] * 10
    assert len(requests) == 10_000


def test_overrides_are_merged_and_null_removes() -> None:
    ops = [
        op
        for d in expanded("data-exception")
        if isinstance(d, Delivery)
        for op in orjson.loads(d.body)["operations"]
        if op["details"]["status"] == "DATA_EXCEPTION"
    ]
    assert ops and all(op["error"] == "pan" and "Luhn" in op["details"]["reason"] for op in ops)
    everything = [
        orjson.loads(d.body)
        for d in expand_scenario(load_scenario_file(EVERYTHING), seed=0)
        if isinstance(d, Delivery)
    ]
    done = [
        op
        for body in everything
        for op in body["operations"]
        if op["details"]["status"] == "CARD_PROD_DONE"
    ]
    assert done and all("dueDate" not in op["details"] for op in done)
    shipped = [
        op
        for body in everything
        for op in body["operations"]
        if op["details"].get("shipment", {}).get("lastUpdatedAt")
    ]
    assert shipped and all(op["details"]["shipment"]["carrier"] == "ups" for op in shipped)


def test_summary_counts_the_stream() -> None:
    summary = summarize(expanded("duplicates"))
    deliveries = [d for d in expanded("duplicates") if isinstance(d, Delivery)]
    assert summary.deliveries == len(deliveries) and summary.cards == 4
    assert summary.operations == sum(len(d.statuses) for d in deliveries)
    assert summary.faults["duplicate-late"] == 4 and summary.last_due == max(
        d.due for d in deliveries
    )


# --- streaming ---------------------------------------------------------------------------------


def test_expansion_is_lazy() -> None:
    began = time.perf_counter()
    first = next(iter(expand_scenario(make(50_000_000))))
    assert isinstance(first, Delivery) and time.perf_counter() - began < 2


def _peak_while_expanding(scenario: Scenario) -> int:
    tracemalloc.start()
    try:
        count = sum(1 for _ in expand_scenario(scenario))
        return tracemalloc.get_traced_memory()[1] if count else 0
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_cards() -> None:
    _peak_while_expanding(make(50))  # warm caches (schemas, faker providers) outside the measure
    small, large = (
        _peak_while_expanding(make(1_000, steps=2)),
        _peak_while_expanding(make(20_000, steps=2)),
    )
    assert large < small * 2, (small, large)


def test_cards_come_out_group_by_group() -> None:
    stream = expand_scenario(make(1_000))
    head = list(itertools.islice(stream, 40))
    assert {c for d in head if isinstance(d, Delivery) for c in d.card_ids} <= {
        c.card_id for c in head if isinstance(c, CardExpectation)
    } | {c for d in head[-5:] if isinstance(d, Delivery) for c in d.card_ids}


# --- any scenario: the properties hold whatever the path, cards, batching and faults ----------

DELAYS = [timedelta(0), timedelta(seconds=90), timedelta(hours=4), timedelta(days=1)]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Small legal scenarios: a model path with forward skips, random batching and faults."""
    full = draw(st.sampled_from(sorted(MODEL.paths())))
    inner = [s for s in full[1:-1] if draw(st.booleans())]  # any subsequence of a path is legal
    statuses = [full[0], *inner, full[-1]] if len(full) > 1 else [full[0]]
    steps = [
        Step(s, draw(st.sampled_from(DELAYS[1:] if i else DELAYS))) for i, s in enumerate(statuses)
    ]
    if MODEL.states[statuses[-1]].repeatable:
        steps[-1] = replace(steps[-1], updates=draw(st.integers(0, 3)), every=timedelta(hours=6))
    length = len(statuses) + steps[-1].updates
    faults = tuple(draw(st.lists(_faults(length), max_size=3)))
    cards = Cards(count=draw(st.integers(1, 12)), spacing=draw(st.sampled_from(DELAYS[:2])))
    batching = Batching(max=draw(st.integers(1, 5)), mix=draw(st.booleans()))
    return Scenario(
        "any", "Drawn.", draw(st.integers(0, 2**16)), tuple(steps), cards, batching, faults
    )


def _faults(length: int) -> st.SearchStrategy[Fault]:
    @st.composite
    def one(draw: st.DrawFn) -> Fault:
        kind = draw(st.sampled_from(sorted(FAULTS)))
        params: dict[str, Any] = {"probability": draw(st.sampled_from([0.3, 1.0]))}
        last = length - 1 if kind == "stale" else length
        if "step" in FAULTS[kind].defaults and last >= 1 and draw(st.booleans()):
            params["step"] = draw(st.integers(1, last))
        if kind == "reorder":
            params["window"] = draw(st.integers(2, 4))
        return Fault(kind, params)

    return one()


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_any_scenario_expands_to_valid_legal_convergent_replayable_deliveries(
    scenario: Scenario,
) -> None:
    assert list(scenario_problems(scenario)) == []
    items = list(expand_scenario(scenario))
    assert digest(items) == digest(expand_scenario(scenario))
    checker, problems = SequenceChecker(), []
    sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if isinstance(item, CardExpectation):
            assert item.state == converge(sent[item.card_id]).get(item.card_id)
            continue
        body = orjson.loads(item.body)
        assert notification_validator(False).is_valid(body)
        assert len(item.statuses) <= scenario.batching.max
        for i, op in enumerate(body["operations"]):
            sent[op["cardId"]].append(op)
            if item.fault is None:
                problems += checker.add(op, where=(item.seq, i))
    problems += list(checker.finish())
    assert [p.message for _, p in problems if p.is_error] == []
    assert len({c for c in sent}) == scenario.cards.total


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_planned_deliveries_are_the_expansions_deliveries_without_expectations(name: str) -> None:
    scenario = load_bundled(name)
    scenario = replace(scenario, cards=replace(scenario.cards, ids=(), count=30))
    full = [item for item in expand_scenario(scenario, seed=5) if isinstance(item, Delivery)]
    assert list(planned_deliveries(scenario, seed=5)) == full
