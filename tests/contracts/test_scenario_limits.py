"""Scenario limits: refused early, with the line, before any work that grows with the input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from d1sim.contracts.scenario.loading import (
    ScenarioError,
    ScenarioLimits,
    load_scenario_file,
    load_scenario_text,
)

MINIMAL = "name: tiny\ndescription: One status.\nseed: 1\nsteps:\n  - status: CARD_PROD_REQUESTED\n"
SHIPPED = (
    "name: shipped\ndescription: Updates.\nseed: 1\nsteps:\n"
    + "".join(f"  - status: {s}\n" for s in (
        "CARD_PROD_REQUESTED", "DATA_PREPARED", "CARD_PROD_READY", "CARD_PROD_ONGOING",
        "CARD_PROD_DONE"))
    + "  - status: CARD_SHIPPED\n    every: 1s\n    updates: {n}\n"
)


def test_fifty_thousand_nested_lists_are_refused_at_the_first_level_too_deep() -> None:
    text = MINIMAL + "receiver: " + "[" * 50_000 + "]" * 50_000 + "\n"
    with pytest.raises(ScenarioError, match="nesting deeper than 32 levels") as caught:
        load_scenario_text(text, "deep.yaml")
    assert (caught.value.line, caught.value.column) == (6, 10 + 32)


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(MINIMAL + "#" * 2000 + "\n")
    with pytest.raises(ScenarioError, match="at most 1,000 bytes"):
        load_scenario_file(path, ScenarioLimits(max_bytes=1000))
    assert load_scenario_file(path).name == "tiny"


def test_the_size_limit_counts_bytes_of_text_too() -> None:
    with pytest.raises(ScenarioError, match="is 1,100 bytes"):
        load_scenario_text(MINIMAL + "#" * (1100 - len(MINIMAL)), "x", ScenarioLimits(1000))


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ScenarioError, match="not a regular file"):
        load_scenario_file(fifo)


def test_a_device_is_refused() -> None:
    with pytest.raises(ScenarioError, match="not a regular file"):
        load_scenario_file("/dev/zero")


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.encode() + b"# caf\xe9\n")
    with pytest.raises(ScenarioError, match=r"not UTF-8 text \(byte 0xe9\)") as caught:
        load_scenario_file(path)
    assert caught.value.line == 6


def test_notifications_per_card_have_a_limit() -> None:
    with pytest.raises(ScenarioError, match="at most 100 per card") as caught:
        load_scenario_text(SHIPPED.format(n=200), "x", ScenarioLimits(max_per_card=100))
    assert caught.value.path == "steps[5].updates"


def test_a_run_has_a_limit_over_all_cards() -> None:
    text = MINIMAL + "cards: [a-1, a-2, a-3]\n"
    with pytest.raises(ScenarioError, match="3 cards x 1 notifications = 3"):
        load_scenario_text(text, "x", ScenarioLimits(max_notifications=2))
    assert load_scenario_text(text, "x", ScenarioLimits(max_notifications=3)).cards.total == 3


def test_aliases_count_as_the_values_they_repeat() -> None:
    text = "a: &a [1, 2, 3, 4, 5]\nb: [*a, *a, *a]\n" + MINIMAL
    with pytest.raises(ScenarioError, match="more than 15 values"):
        load_scenario_text(text, "x", ScenarioLimits(max_nodes=15))


def test_thirty_thousand_updates_are_numbered_in_order() -> None:
    # Numbering used to count the earlier notices for each one: quadratic, 18 s for this file.
    scenario = load_scenario_text(SHIPPED.format(n=30_000), "x")
    updates = [n.update for n in scenario.path if n.status == "CARD_SHIPPED"]
    assert updates == list(range(30_001))
