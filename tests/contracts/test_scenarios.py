"""Scenario files: the format loads, bad files fail on the right line with a useful message."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from d1sim.contracts.notification.documents import load_document
from d1sim.contracts.scenario.checks import scenario_problems
from d1sim.contracts.scenario.durations import (
    EXAMPLES,
    ISO_PATTERN,
    SHORT_PATTERN,
    DurationError,
    format_duration,
    parse_duration,
)
from d1sim.contracts.scenario.faults import FAULTS
from d1sim.contracts.scenario.loading import (
    Scenario,
    ScenarioError,
    Step,
    bundled_scenarios,
    load_bundled,
    load_scenario_file,
    load_scenario_text,
)

DATA = Path(__file__).parents[1] / "data" / "scenarios"
BAD = sorted((DATA / "bad").glob("*.yaml"))
MINIMAL = "name: tiny\ndescription: One status.\nseed: 1\nsteps:\n  - status: CARD_PROD_REQUESTED\n"


def expected_error(path: Path) -> dict[str, str]:
    """The ``# error-<what>: value`` header of a known-bad scenario file."""
    return dict(re.findall(r"^# error-(\w+): ?(.*)$", path.read_text(encoding="utf-8"), re.M))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_scenario_names_line_field_and_fix(path: Path) -> None:
    want = expected_error(path)
    with pytest.raises(ScenarioError) as caught:
        load_scenario_file(path)
    error = caught.value
    assert (error.line, error.column) == (int(want["line"]), int(want["column"])), str(error)
    assert error.path == want["path"]
    assert want["says"] in error.message
    assert error.source == str(path)
    assert str(error).startswith(f"{path}:{error.line}:{error.column}: ")


def test_scenario_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="a scenario is a mapping"):
        load_scenario_text("- just\n- a list\n", "list.yaml")


def test_empty_document_is_refused_at_line_one() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario_text("", "empty.yaml")
    assert (caught.value.line, caught.value.column) == (1, 1)


def test_minimal_scenario_gets_the_defaults() -> None:
    scenario = load_scenario_text(MINIMAL, "tiny.yaml")
    assert scenario.issuer_id == "ISSUER0001"
    assert scenario.cards.total == 1 and not scenario.cards.ids
    assert (scenario.batching.max, scenario.batching.mix, scenario.batching.window) == (
        10,
        True,
        timedelta(),
    )
    assert scenario.faults == ()
    assert (
        scenario.expect.all_delivered,
        scenario.expect.responses,
        scenario.expect.end_state,
    ) == (True, ("2xx",), True)
    assert scenario.receiver == {}


def test_every_field_is_read() -> None:
    scenario = load_scenario_file(DATA / "everything.yaml")
    assert scenario.issuer_id == "BANK000042"
    assert scenario.cards.ids == ("card-0001", "card-0002", "card-0003")
    assert (scenario.cards.spacing, scenario.cards.correlated, scenario.cards.per_file) == (
        timedelta(minutes=2),
        True,
        2,
    )
    assert scenario.steps[2] == Step(
        "CARD_PROD_CANCELED_LATER", timedelta(minutes=90), unknown=True
    )
    assert scenario.steps[3].details == {"dueDate": None}
    assert scenario.steps[5].every == timedelta(hours=10) and scenario.steps[5].shipment == {
        "carrier": "ups"
    }
    assert [f.kind for f in scenario.faults] == [
        "duplicate",
        "reorder",
        "delay",
        "unknown_status",
        "unknown_fields",
        "minimal",
        "stale",
    ]
    assert scenario.faults[3].tag == "future-status" and scenario.faults[0].tag == "duplicate"
    assert scenario.faults[2].get("jitter") == timedelta(milliseconds=500)
    assert scenario.faults[2].steps == frozenset({2, 3})
    assert scenario.expect.responses == ("2xx", "409") and not scenario.expect.end_state
    assert scenario.receiver == {"fail_first": 2}


def test_path_unrolls_shipment_updates() -> None:
    scenario = load_scenario_file(DATA / "everything.yaml")
    path = scenario.path
    assert [n.index for n in path] == list(range(1, 9))
    shipped = [n for n in path if n.status == "CARD_SHIPPED"]
    assert [n.update for n in shipped] == [0, 1, 2, 3]
    offsets = [n.offset for n in shipped]
    assert offsets[2] - offsets[1] == offsets[3] - offsets[2] == timedelta(hours=10)


@pytest.mark.parametrize(
    "cards, ids, count",
    [
        ("abc-1", ("abc-1",), 1),
        (["a", "b"], ("a", "b"), 2),
        ({"count": 7}, (), 7),
        ({"ids": ["x"]}, ("x",), 1),
    ],
)
def test_cards_take_four_shapes(cards: object, ids: tuple[str, ...], count: int) -> None:
    scenario = load_scenario_text(MINIMAL + yaml.safe_dump({"cards": cards}), "cards.yaml")
    assert scenario.cards.ids == ids and scenario.cards.total == count


def test_cards_with_both_count_and_ids_is_refused() -> None:
    with pytest.raises(ScenarioError, match="exactly one of count or ids"):
        load_scenario_text(MINIMAL + "cards: {count: 2, ids: [a, b]}\n", "both.yaml")


def test_forward_skip_is_allowed_and_repeat_of_a_final_status_is_not() -> None:
    skip = MINIMAL + "  - status: CARD_PROD_DONE\n"
    assert [s.status for s in load_scenario_text(skip, "skip.yaml").steps][-1] == "CARD_PROD_DONE"
    twice = MINIMAL + "  - status: CARD_PROD_REQUESTED\n"
    with pytest.raises(ScenarioError, match="use the duplicate fault"):
        load_scenario_text(twice, "twice.yaml")


def test_nothing_follows_a_terminal_failure() -> None:
    text = MINIMAL + "  - status: DATA_EXCEPTION\n  - status: DATA_PREPARED\n"
    with pytest.raises(
        ScenarioError, match=r"after DATA_EXCEPTION: nothing \(it is terminal\)"
    ) as caught:
        load_scenario_text(text, "after-terminal.yaml")
    assert caught.value.path == "steps[2].status" and caught.value.line == 7


def test_unknown_status_needs_the_mark_and_then_sits_anywhere() -> None:
    text = MINIMAL + "  - {status: CARD_RETURNED, unknown: true}\n  - status: DATA_PREPARED\n"
    assert load_scenario_text(text, "ok.yaml").steps[1].unknown


def test_scenarios_built_in_code_are_checked_by_the_same_rules() -> None:
    bad = Scenario("inline", "Built in code.", 3, (Step("CARD_PROD_DONE"), Step("DATA_PREPARED")))
    assert [path for path, _ in scenario_problems(bad)] == [("steps", 1, "status")]
    assert list(scenario_problems(Scenario("empty", "No steps.", 3, ()))) == [
        (("steps",), "a scenario needs at least one step")
    ]


def test_scenarios_built_in_code_need_no_file() -> None:
    scenario = Scenario(
        "inline", "Built in code.", 3, (Step("CARD_PROD_REQUESTED"), Step("DATA_PREPARED"))
    )
    assert [n.status for n in scenario.path] == ["CARD_PROD_REQUESTED", "DATA_PREPARED"]


# --- bundled scenarios -------------------------------------------------------------------------

REQUIRED_BUNDLED = {
    "happy-path",
    "data-exception",
    "canceled-in-production",
    "shipment-tracking",
    "unknown-status",
    "duplicates",
    "out-of-order",
    "bulk-batch",
    "bulk-file",
    "receiver-outage",
}


def test_bundled_scenarios_are_listed_with_one_line_descriptions() -> None:
    listed = bundled_scenarios()
    assert set(listed) >= REQUIRED_BUNDLED
    for name, description in listed.items():
        assert description and "\n" not in description
        assert load_bundled(name).name == name  # the file name is the scenario's name


def test_unknown_bundled_name_suggests_a_close_one() -> None:
    with pytest.raises(KeyError, match="did you mean 'happy-path'"):
        load_bundled("happy-paht")


def test_bulk_scenarios_have_the_promised_size() -> None:
    batch, files = load_bundled("bulk-batch"), load_bundled("bulk-file")
    assert batch.cards.total == 1_000 and batch.batching.max == 10 and batch.batching.mix
    assert files.cards.total == 10_000 and files.cards.correlated


def test_receiver_outage_asks_for_a_failing_receiver() -> None:
    scenario = load_bundled("receiver-outage")
    assert (
        scenario.receiver["fail_first"] > 0
        and scenario.expect.all_delivered
        and not scenario.faults
    )


# --- the schema and the tables agree -----------------------------------------------------------


def test_schema_is_a_valid_2020_12_schema_with_its_id() -> None:
    schema = load_document("scenario.schema.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "https://d1sim.dev/schemas/scenario.schema.json"


def test_every_fault_parameter_is_in_the_schema() -> None:
    allowed = set(load_document("scenario.schema.json")["$defs"]["fault"]["properties"])
    for row in FAULTS.values():
        assert set(row.defaults) <= allowed, row.name


def test_docs_describe_every_fault_and_bundled_scenario() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "scenarios.md").read_text(encoding="utf-8")
    for kind in FAULTS:
        assert f"### `{kind}`" in docs
    for name in bundled_scenarios():
        assert f"`{name}`" in docs


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("4h", 14_400),
        ("2d", 172_800),
        ("1h30m", 5_400),
        ("500ms", 0.5),
        ("1w", 604_800),
        ("PT4H", 14_400),
        ("P2D", 172_800),
        ("P1DT12H", 129_600),
        ("PT1.5S", 1.5),
        ("P1W", 604_800),
        (0, 0),
        (2.5, 2.5),
    ],
)
def test_durations_read_short_and_iso_forms(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["4x", "", "P", "PT", "P1Y", "P1M", "-5s", "h", "1.5.2s", True, -1, None]
)
def test_durations_refuse_other_spellings(text: object) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)  # type: ignore[arg-type]


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10**10).map(lambda ms: timedelta(milliseconds=ms)))
def test_formatted_durations_read_back(span: timedelta) -> None:
    assert parse_duration(format_duration(span)) == span


DURATION_SCHEMA = jsonschema.Draft202012Validator(
    {**load_document("scenario.schema.json")["$defs"]["duration"]}
)


@settings(max_examples=300)
@given(
    st.one_of(
        st.sampled_from(EXAMPLES),
        st.from_regex(SHORT_PATTERN, fullmatch=True),
        st.from_regex(ISO_PATTERN, fullmatch=True),
        st.text(alphabet="0123456789PTWDHMS.smhdw", max_size=8),
    )
)
def test_schema_pattern_and_parser_agree(text: str) -> None:
    try:
        parse_duration(text)
        parsed = True
    except DurationError as exc:
        parsed = "longer than" in str(exc)  # well spelt, refused for its length only
    assert DURATION_SCHEMA.is_valid(text) == parsed


def test_too_long_a_duration_is_a_located_error() -> None:
    text = MINIMAL + "  - status: DATA_PREPARED\n    after: 4000d\n"
    with pytest.raises(ScenarioError, match="longer than 3650 days") as caught:
        load_scenario_text(text, "long.yaml")
    assert (caught.value.line, caught.value.path) == (7, "steps[1].after")


def test_a_run_longer_than_a_century_is_refused() -> None:
    with pytest.raises(ScenarioError, match="the run would last") as caught:
        load_scenario_text(MINIMAL + "cards: {count: 100000, spacing: 1d}\n", "century.yaml")
    assert caught.value.path == "cards.spacing"
