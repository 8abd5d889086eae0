"""Schema validation: the seed validates, known-bad payloads fail at the right pointer,
and the default profile is forward-compatible."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from d1sim.contracts.notification.validation import NotificationValidator, validate_notification

DATA = Path(__file__).parents[1] / "data"
INVALID = json.loads((DATA / "invalid" / "expected-pointers.json").read_text())


def test_every_seed_example_validates(seed_examples: dict[str, Any]) -> None:
    assert len(seed_examples) == 6
    for name, doc in seed_examples.items():
        assert validate_notification(doc) == [], name


def test_seed_examples_also_pass_the_strict_profile(seed_examples: dict[str, Any]) -> None:
    for name, doc in seed_examples.items():
        assert validate_notification(doc, strict=True) == [], name


@pytest.mark.parametrize("name", sorted(INVALID))
def test_known_bad_payload_is_rejected_at_its_pointer(name: str, data_dir: Path) -> None:
    doc = json.loads((data_dir / "invalid" / name).read_text(encoding="utf-8"))
    problems = validate_notification(doc)
    assert INVALID[name] in [p.pointer for p in problems]
    assert all(p.severity == "error" and p.message for p in problems)


def test_missing_field_problem_names_the_field(seed_examples: dict[str, Any]) -> None:
    doc = copy.deepcopy(seed_examples["data-prepared"])
    del doc["operations"][0]["cardId"]
    [problem] = validate_notification(doc)
    assert problem.pointer == "/operations/0/cardId"
    assert "cardId" in problem.message and "missing" in problem.message


def test_fast_path_and_explanation_agree(seed_examples: dict[str, Any], data_dir: Path) -> None:
    validator = NotificationValidator()
    for doc in seed_examples.values():
        assert validator.is_valid(doc) and list(validator.iter_problems(doc)) == []
    for name in INVALID:
        doc = json.loads((data_dir / "invalid" / name).read_text(encoding="utf-8"))
        assert not validator.is_valid(doc) and list(validator.iter_problems(doc)), name


def _operation(seed_examples: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(seed_examples["card-shipped-update"]["operations"][0])


@pytest.mark.parametrize("status", ["CARD_PROD_QUALITY_CHECK", "CARD_RETURNED", "X"])
def test_unknown_details_status_is_accepted(seed_examples: dict[str, Any], status: str) -> None:
    op = _operation(seed_examples)
    op["details"]["status"] = status
    assert validate_notification({"operations": [op]}) == []
    assert [p.pointer for p in validate_notification({"operations": [op]}, strict=True)] == [
        "/operations/0/details/status"
    ]


@pytest.mark.parametrize("operation", ["ACTIVATE", "STANDALONE_TRACKING", "SOME_FUTURE_OPERATION"])
def test_unknown_or_other_operations_are_accepted(seed_examples: dict[str, Any], operation: str) -> None:
    op = _operation(seed_examples)
    op["operation"] = operation
    del op["details"]  # details are only required for PRODUCE
    assert validate_notification({"operations": [op]}) == []


@pytest.mark.parametrize(
    "path",
    [(), ("operations", 0), ("operations", 0, "details"), ("operations", 0, "details", "shipment"),
     ("operations", 0, "details", "shipment", "lastCheckpoint")],
)
def test_extra_fields_are_accepted_at_every_level(seed_examples: dict[str, Any], path: tuple[Any, ...]) -> None:
    doc = copy.deepcopy(seed_examples["card-shipped-update"])
    target = doc
    for part in path:
        target = target[part]
    target["vendorAddedField"] = {"nested": [1, "two"]}
    assert validate_notification(doc) == []
    strict = validate_notification(doc, strict=True)
    assert [p.pointer for p in strict] == ["/" + "/".join(map(str, (*path, "vendorAddedField")))]


@pytest.mark.parametrize(
    ("pointer", "value"),
    [("status", "DELIVERED_TO_NEIGHBOUR"), ("carrier", "royal-mail")],
)
def test_open_shipment_vocabularies(seed_examples: dict[str, Any], pointer: str, value: str) -> None:
    op = _operation(seed_examples)
    op["details"]["shipment"][pointer] = value
    assert validate_notification({"operations": [op]}) == []


def test_deprecated_consumer_id_is_still_accepted(seed_examples: dict[str, Any]) -> None:
    op = _operation(seed_examples)
    op["details"]["consumerId"] = "C-1234"
    assert validate_notification({"operations": [op]}) == []


def test_problems_come_in_document_order(seed_examples: dict[str, Any]) -> None:
    op = _operation(seed_examples)
    op["operationId"], op["startTime"] = "bad id", "soon"
    pointers = [p.pointer for p in validate_notification({"operations": [op]})]
    assert pointers == ["/operations/0/operationId", "/operations/0/startTime"]
