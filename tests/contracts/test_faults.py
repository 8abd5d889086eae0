"""Faults: each kind is reproducible, does what its row says, and labels what it touched."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from d1sim.contracts.lifecycle import load_lifecycle
from d1sim.contracts.lifecycle.convergence import order_key
from d1sim.contracts.notification.documents import load_document
from d1sim.contracts.notification.validation import validate_notification
from d1sim.contracts.notification.vocabulary import UNKNOWN_STATUSES
from d1sim.contracts.scenario.expansion import CardExpectation, expand_scenario, fault_labels
from d1sim.contracts.scenario.faults import FAULTS, Fault
from d1sim.contracts.scenario.loading import Scenario, load_scenario_text
from d1sim.contracts.scenario.timeline import Delivery

MODEL = load_lifecycle()
BASE: dict[str, Any] = {
    "name": "faulty",
    "description": "Fault tests.",
    "seed": 5,
    "cards": {"count": 4, "spacing": "10m"},
    "batching": {"mix": False},
    "steps": [
        {"status": "CARD_PROD_REQUESTED"},
        {"status": "DATA_PREPARED", "after": "90s"},
        {"status": "CARD_PROD_READY", "after": "4h"},
        {"status": "CARD_PROD_ONGOING", "after": "1d"},
        {"status": "CARD_PROD_DONE", "after": "3h"},
        {"status": "CARD_SHIPPED", "after": "6h", "updates": 2, "every": "12h"},
    ],
}


def build(*faults: Mapping[str, Any], **changes: Any) -> Scenario:
    """A four-card scenario (one lane per card unless ``batching`` changes) with ``faults``."""
    data = {**BASE, **changes, "faults": list(faults)}
    return load_scenario_text(yaml.safe_dump(data, sort_keys=False), "faults.yaml")


def deliveries(scenario: Scenario, seed: int | None = None) -> list[Delivery]:
    return [d for d in expand_scenario(scenario, seed=seed) if isinstance(d, Delivery)]


def baseline(scenario: Scenario) -> list[Delivery]:
    return deliveries(replace(scenario, faults=()))


def by_key(items: list[Delivery]) -> dict[str, list[Delivery]]:
    lanes: dict[str, list[Delivery]] = defaultdict(list)
    for item in items:
        lanes[item.key].append(item)
    return lanes


def operations(item: Delivery) -> list[dict[str, Any]]:
    return orjson.loads(item.body)["operations"]


def sent_by_card(items: list[Delivery]) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    cards: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for item in items:
        for op in operations(item):
            cards[op["cardId"]].append((item.seq, op))
    return cards


DEFAULT_FAULTS = [{"kind": kind, "probability": 0.5} for kind in FAULTS]


@pytest.mark.parametrize("fault", DEFAULT_FAULTS, ids=[f["kind"] for f in DEFAULT_FAULTS])
def test_every_fault_is_reproducible_and_follows_the_seed(fault: Mapping[str, Any]) -> None:
    scenario = build(fault)
    first = expand_scenario(scenario)
    assert list(first) == list(expand_scenario(scenario))
    outcomes = {tuple(d.fault for d in deliveries(scenario, seed)) for seed in range(6)}
    assert len(outcomes) > 1  # the seed decides which deliveries are hit


def test_a_clean_scenario_has_no_labels() -> None:
    assert all(d.fault is None for d in deliveries(build()))


@pytest.mark.parametrize("fault", DEFAULT_FAULTS, ids=[f["kind"] for f in DEFAULT_FAULTS])
def test_every_fault_labels_what_it_touched(fault: Mapping[str, Any]) -> None:
    labelled = [d for d in deliveries(build({**fault, "label": "mine"})) if d.fault]
    assert labelled and all(fault_labels(d) == ("mine",) for d in labelled)


def test_duplicate_delivers_identical_bodies_in_the_same_lane() -> None:
    scenario = build({"kind": "duplicate", "probability": 0.4})
    sent, plain = deliveries(scenario), baseline(scenario)
    twins = [d for d in sent if d.fault == "duplicate"]
    assert twins and len(sent) == len(plain) + len(twins)
    for twin in twins:
        originals = [
            d for d in sent if d.seq < twin.seq and d.body == twin.body and d.fault is None
        ]
        assert len(originals) == 1 and originals[0].key == twin.key
    assert sorted(d.body for d in sent if d.fault is None) == sorted(d.body for d in plain)


def test_duplicate_of_one_step_later() -> None:
    sent = deliveries(build({"kind": "duplicate", "step": 6, "after": "1h"}))
    twins = [d for d in sent if d.fault]
    assert len(twins) == 4 and all(d.statuses == ("CARD_SHIPPED",) for d in twins)
    for twin in twins:
        original = next(d for d in sent if d.body == twin.body and d is not twin)
        assert twin.due == original.due + 3600


@settings(max_examples=25, deadline=None)
@given(window=st.integers(2, 6), seed=st.integers(0, 10**6))
def test_reorder_moves_deliveries_within_their_window_only(window: int, seed: int) -> None:
    scenario = build({"kind": "reorder", "window": window})
    plain, mixed = (
        by_key(deliveries(replace(scenario, faults=()), seed)),
        by_key(deliveries(scenario, seed)),
    )
    for key, lane in mixed.items():
        before = [d.body for d in plain[key]]
        assert sorted(d.body for d in lane) == sorted(before)
        for i, item in enumerate(lane):
            came_from = before.index(item.body)
            assert came_from // window == i // window
            assert (item.fault == "reorder") == (came_from != i)
        assert [d.due for d in lane] == [d.due for d in plain[key]]  # dues keep their slots
        assert any(d.fault for d in lane)


def test_reorder_with_an_explicit_permutation() -> None:
    scenario = build({"kind": "reorder", "permutation": [2, 0, 1]})
    plain, mixed = by_key(baseline(scenario)), by_key(deliveries(scenario))
    for key, lane in mixed.items():
        before = plain[key]
        for first in range(0, len(before) - len(before) % 3, 3):
            assert [d.body for d in lane[first : first + 3]] == [
                before[first + k].body for k in (2, 0, 1)
            ]
        assert [d.body for d in lane[len(before) - len(before) % 3 :]] == [
            d.body for d in before[len(before) - len(before) % 3 :]
        ]


def test_delay_holds_deliveries_back_with_jitter_and_keeps_lane_order() -> None:
    scenario = build({"kind": "delay", "delay": "2m", "jitter": "30s", "probability": 0.5})
    plain, late = by_key(baseline(scenario)), by_key(deliveries(scenario))
    for key, lane in late.items():
        assert [d.body for d in lane] == [d.body for d in plain[key]]
        dues = [d.due for d in lane]
        assert dues == sorted(dues)
        for item, before in zip(lane, plain[key], strict=True):
            assert item.due >= before.due
            if item.fault == "delay":
                assert (
                    90 <= item.due - before.due <= 150
                    or item.due > before.due + 150
                    and _held(lane, item)
                )


def _held(lane: list[Delivery], item: Delivery) -> bool:
    """A delivery may wait longer only because an earlier one of its lane was delayed past it."""
    return any(d.seq < item.seq and d.due == item.due for d in lane)


def test_unknown_status_is_inserted_once_per_card_before_a_known_one() -> None:
    sent = deliveries(build({"kind": "unknown_status"}))
    for ops in sent_by_card(sent).values():
        statuses = [op["details"]["status"] for _, op in ops]
        unknown = [i for i, s in enumerate(statuses) if not MODEL.is_known(s)]
        assert len(unknown) == 1 and statuses[unknown[0]] in UNKNOWN_STATUSES
        assert unknown[0] < len(statuses) - 1  # a known status still follows
    assert sum(d.fault == "unknown_status" for d in sent) == 4


def test_unknown_status_after_a_chosen_step() -> None:
    sent = deliveries(build({"kind": "unknown_status", "step": 3, "status": "CARD_PROD_PAUSED"}))
    for ops in sent_by_card(sent).values():
        assert [op["details"]["status"] for _, op in ops][3] == "CARD_PROD_PAUSED"


def _contains(big: Any, small: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and _contains(big[k], v) for k, v in small.items()
        )
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and all(map(_contains, big, small))
    return big == small


def test_unknown_fields_only_add_fields_and_still_validate() -> None:
    scenario = build({"kind": "unknown_fields", "fields": 3})
    plain = {d.seq: d for d in baseline(scenario)}
    for item in deliveries(scenario):
        assert item.fault == "unknown_fields"
        before, after = orjson.loads(plain[item.seq].body), orjson.loads(item.body)
        assert after != before and _contains(after, before)
        assert validate_notification(after) == []
        strict = validate_notification(after, strict=True)
        assert strict and all(p.message == "unknown field (strict profile)" for p in strict)


def test_minimal_keeps_only_required_fields() -> None:
    required = set(load_document("operation.schema.json")["required"]) | {"details", "endTime"}
    sent = deliveries(build({"kind": "minimal", "step": [2, 6]}))
    for item in sent:
        for op in operations(item):
            step_two_or_six = op["details"]["status"] == "DATA_PREPARED" or (
                op["details"]["status"] == "CARD_SHIPPED" and "shipment" not in op["details"]
            )
            assert (item.fault == "minimal") == step_two_or_six
            if item.fault:
                assert set(op) <= required and op["details"] == {"status": op["details"]["status"]}
                assert ("endTime" in op) == (op["status"] != "PENDING")
        assert validate_notification(orjson.loads(item.body)) == []


def test_stale_redelivers_an_earlier_status_after_later_ones() -> None:
    sent = deliveries(build({"kind": "stale", "after": "30m"}))
    for ops in sent_by_card(sent).values():
        seqs = [seq for seq, _ in ops]
        stale = [
            (seq, op) for seq, op in ops if next(d for d in sent if d.seq == seq).fault == "stale"
        ]
        assert len(stale) == 1
        seq, op = stale[0]
        assert seq == max(seqs)
        earlier = [o for s, o in ops if s < seq]
        assert op in earlier
        assert any(order_key(o) > order_key(op) for o in earlier)  # a later state came before it


def test_stale_of_a_chosen_step() -> None:
    sent = deliveries(build({"kind": "stale", "step": 2}))
    for ops in sent_by_card(sent).values():
        assert ops[-1][1]["details"]["status"] == "DATA_PREPARED"


def test_lane_faults_act_on_mixed_batches_as_a_whole() -> None:
    scenario = build(
        {"kind": "duplicate", "step": 1}, batching={"max": 4, "mix": True}, cards={"count": 8}
    )
    twins = [d for d in deliveries(scenario) if d.fault]
    assert len(twins) == 2 and all(len(d.card_ids) == 4 for d in twins)


def test_minimal_keeps_the_stamp_that_orders_shipment_updates() -> None:
    scenario = build({"kind": "minimal", "step": 8})
    for item in expand_scenario(scenario):
        if isinstance(item, Delivery) and item.fault:
            (op,) = operations(item)
            assert set(op["details"]["shipment"]) == {"lastUpdatedAt"}
        elif isinstance(item, CardExpectation):
            # The stripped last update still wins: it is the latest, whatever else it lacks.
            assert item.state is not None and item.state.shipment is not None
            assert set(item.state.shipment) == {"lastUpdatedAt"}


def test_fault_defaults_come_from_the_table() -> None:
    fault = Fault("delay", {"jitter": 0})
    assert fault.get("delay") == FAULTS["delay"].defaults["delay"] and fault.get("jitter") == 0
    assert fault.steps is None and Fault("minimal", {"step": 3}).steps == frozenset({3})
