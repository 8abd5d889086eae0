"""The mock D1's parts without sockets: order scenarios, cancellation, lanes, clocks, settings."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from d1sim.contracts.lifecycle.sequence import check_sequence
from d1sim.contracts.notification.validation import validate_notification
from d1sim.contracts.payloads.inbound import check_order, scenario_from_request_id
from d1sim.contracts.scenario.expansion import expand_scenario, planned_deliveries
from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.d1.config import IssuerSettings, SettingsError, bundled, load_config_file
from d1sim.simulator.d1.issuers import VirtualClock
from d1sim.simulator.d1.lanes import Lane, Timetable, merged_body, pack
from d1sim.simulator.d1.orders import cancel_operation, held_operation, order_scenario
from d1sim.simulator.d1.store import OrderRecord
from d1sim.simulator.delivery.outbox import StoredDelivery
from d1sim.simulator.errors import UsageError

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def order(scenario: str = "happy-path", request_id: str | None = "REQ-1") -> OrderRecord:
    return OrderRecord("op-123", "ISSUER0001", "card-9", request_id, scenario, 7, START.timestamp(), 0.0)


def operations(scenario: str, request_id: str | None = "REQ-1") -> list[dict]:
    one = order_scenario(bundled(scenario), order(scenario, request_id), max_operations=10)
    bodies = [orjson.loads(d.body) for d in planned_deliveries(one, seed=7, start=START)]
    return [op for body in bodies for op in body["operations"]]


@pytest.mark.parametrize(
    "scenario",
    [
        "happy-path",
        "data-exception",
        "canceled-in-production",
        "duplicates",
        "minimal-payload",
        "unknown-fields",
    ],
)
def test_an_order_scenario_is_one_card_stamped_with_the_order(scenario: str) -> None:
    ops = operations(scenario)
    assert {op["cardId"] for op in ops} == {"card-9"}
    assert {op["operationId"] for op in ops} == {"op-123"}
    assert ops[0]["startTime"] == "2025-03-01T09:00:00.000Z"
    if scenario != "minimal-payload":  # minimal strips optional fields, correlation included
        assert all(op["issuerRequestId"] == "REQ-1" for op in ops)
    assert all(not validate_notification({"operations": [op]}) for op in ops)


def test_without_a_request_id_nothing_is_stamped_but_the_operation_id() -> None:
    assert all("issuerRequestId" not in op for op in operations("happy-path", None))


def test_the_order_scenario_keeps_the_scenarios_own_overrides() -> None:
    failed = [op for op in operations("data-exception") if op["status"] == "FAILED"]
    assert failed and failed[0]["error"] == "pan" and "Luhn" in failed[0]["details"]["reason"]


def test_a_cancellation_follows_the_last_operation_legally() -> None:
    ops = operations("happy-path")[:3]
    cancel = cancel_operation(ops[-1], datetime(2025, 3, 2, tzinfo=UTC))
    assert cancel["details"]["status"] == "CARD_PROD_CANCELED" and cancel["status"] == "FAILED"
    assert cancel["endTime"] == "2025-03-02T00:00:00.000Z" and "shipment" not in cancel["details"]
    assert cancel["operationId"] == "op-123" and cancel["issuerRequestId"] == "REQ-1"
    assert not [p for p in check_sequence([*ops, cancel]) if p.is_error]
    assert held_operation([cancel, *ops], "card-9") is cancel


def test_scenario_hooks_take_the_longest_known_name() -> None:
    known = ["happy", "happy-path", "data-exception"]
    assert scenario_from_request_id("SCN-happy-path-1", known) == "happy-path"
    assert scenario_from_request_id("SCN-happy-x", known) == "happy"
    assert scenario_from_request_id("REQ-1", known) is None
    with pytest.raises(ValueError, match="no known scenario"):
        scenario_from_request_id("SCN-nope-1", known)
    assert check_order({"distributionChannel": "CENTRAL", "futureField": {"x": 1}}) is None


def stored(seq: int, due: float, ops: int = 1, fault: str | None = None) -> StoredDelivery:
    body = orjson.dumps({"operations": [{"n": seq, "i": i} for i in range(ops)]})
    return StoredDelivery(seq, "r", Delivery(seq, due, body, ("c",), ("S",), "x", "s", f"k{seq}", fault))


def lane(*items: StoredDelivery) -> Lane:
    return Lane("r", items[0].delivery.key, "ISSUER0001", 100.0, deque(items))


def test_ready_heads_pack_into_posts_of_at_most_max_operations() -> None:
    lanes = [
        lane(stored(1, 0, 3)),
        lane(stored(2, 0, 4)),
        lane(stored(3, 0, 4)),
        lane(stored(4, 0, 1, fault="duplicate")),
        lane(stored(5, 0, 12)),
    ]
    posts = pack(lanes, 8)
    assert [[lane.head.id for lane in post] for post in posts] == [[1, 2], [4], [5], [3]]
    assert len(orjson.loads(merged_body(posts[0]))["operations"]) == 7
    assert merged_body(posts[1]) == lanes[3].head.delivery.body  # a faulty body goes as planned


def test_the_timetable_releases_lanes_by_virtual_due_then_by_retry_time() -> None:
    table = Timetable()
    early, late = lane(stored(1, 5)), lane(stored(2, 50))
    retrying = lane(StoredDelivery(3, "r", stored(3, 0).delivery, next_attempt_at=1000.0))
    for item in (late, early, retrying):
        table.file(item, real=10.0)
    assert table.pop_ready(virtual=110.0, real=10.0, immediate=False) == [early]
    assert table.next_time(lambda v: v - 100.0, immediate=False) == 50.0
    assert table.pop_ready(virtual=110.0, real=1000.0, immediate=True) == [retrying, late]
    table.file(early, real=0.0)
    Timetable.forget(early)
    assert table.pop_ready(1e9, 1e9, True) == []


def test_a_virtual_clock_scales_pauses_and_rebases() -> None:
    clock = VirtualClock(virtual=0.0, anchor=100.0, scale=3600.0)
    assert clock.now(101.0) == 3600.0 and clock.real_time_of(7200.0, 101.0) == 102.0
    clock.rebase(101.0)
    clock.paused = True
    assert clock.now(500.0) == 3600.0 and clock.real_time_of(7200.0, 500.0) == float("inf")
    assert VirtualClock(0.0, 0.0, 0.0).now(5.0) == 5.0  # scale 0 runs in real time


def test_issuer_settings_hide_secrets_and_merge_updates() -> None:
    raw = {
        "issuerId": "ISSUER0001",
        "webhookUrl": "http://h/x",
        "signSecret": None,
        "auth": {
            "type": "oauth2",
            "tokenUrl": "http://h/t",
            "clientId": "d1",
            "clientSecret": "s3cr3t",
        },
    }
    settings = IssuerSettings.parse(raw)
    assert "s3cr3t" not in repr(settings.public()) and "s3cr3t" not in repr(settings)
    updated = IssuerSettings.parse({"issuerId": "ISSUER0001", "timeScale": 60}, settings)
    assert updated.time_scale == 60 and updated.data["auth"]["clientSecret"] == "s3cr3t"
    with pytest.raises(SettingsError, match="^auth:") as caught:
        IssuerSettings.parse({**raw, "auth": {"type": "bearer", "token": "s3cr3t", "x": 1}})
    assert "s3cr3t" not in str(caught.value)


def test_a_config_file_reads_issuers_with_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "from-env")
    path = tmp_path / "issuers.yaml"
    path.write_text(
        "issuers:\n  - issuerId: ISSUER0001\n    webhookUrl: http://h/x\n"
        "    auth: {type: bearer, token: '${HOOK_TOKEN}'}\n"
    )
    assert load_config_file(path)[0]["auth"]["token"] == "from-env"
    path.write_text("- issuerId: ISSUER0001\n  webhookUrl: http://h/x\n  timescale: 1\n")
    with pytest.raises(UsageError, match="issuer #1.*timescale"):
        load_config_file(path)
    path.write_text("- issuerId: ISSUER0001\n  auth: {type: bearer, token: s3cr3t-in-a-typo}}\n")
    with pytest.raises(UsageError, match="line 2") as caught:
        load_config_file(path)
    assert "s3cr3t" not in str(caught.value)


def test_a_scenario_expansion_is_untouched_by_stamping_apart_from_ids() -> None:
    base = bundled("happy-path")
    plain = [d.due for d in expand_scenario(base) if isinstance(d, Delivery)]
    stamped = [
        d.due
        for d in planned_deliveries(
            order_scenario(base, order(), 10),
            seed=base.seed,
            start=datetime(2025, 1, 17, 6, 28, 2, 492000, tzinfo=UTC),
        )
    ]
    assert plain == stamped
