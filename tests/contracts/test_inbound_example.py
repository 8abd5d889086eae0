"""The order schema's own example is a valid order, and each caller gets its own copy."""

from __future__ import annotations

from d1sim.contracts.payloads.inbound import check_batch, check_order, sample_order


def test_the_schema_example_is_a_valid_order_and_batch_item() -> None:
    assert check_order(sample_order()) is None
    assert check_batch({"cards": [{**sample_order(), "cardId": "card-1"}]}) is None


def test_sample_order_is_a_fresh_copy() -> None:
    first = sample_order()
    first["shipment"]["deliveryAddress"]["city"] = "Lyon"
    assert sample_order()["shipment"]["deliveryAddress"]["city"] == "Paris"
    broken = sample_order()
    del broken["shipment"]["deliveryAddress"]["zipCode"]
    error = check_order(broken)
    assert error is not None and error.field == "shipment.deliveryAddress.zipCode"
