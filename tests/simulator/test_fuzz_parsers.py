"""Random and hostile input to every parser: a clear message and exit 2, never a traceback.

The properties: the scenario loader answers a :class:`ScenarioError` or a scenario; ``d1sim
validate`` exits 0, 1 or 2 with no traceback for any bytes as JSON, JSON Lines or stdin; every
sub-command's argument parser accepts or exits 2 with ``error: argument`` for any mix of its
options and hostile values. Hypothesis bounds the work (max_examples, deadline); the longer
campaign is ``tests/soak/hostile_inputs.py``.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d1sim.contracts.scenario.loading import ScenarioError, load_scenario_text
from d1sim.simulator.cli import dispatch as cli

SCENARIOS = Path(__file__).parents[2] / "scenarios"
BUNDLED = [p.read_text(encoding="utf-8") for p in sorted(SCENARIOS.glob("*.yaml"))]
FUZZ = settings(max_examples=60, deadline=2000, suppress_health_check=list(HealthCheck),
                database=None)
# Values that broke a parser once: non-finite and huge numbers, broken URLs, control characters.
HOSTILE = ["nan", "inf", "-inf", "1e300", "-1", "0", str(10**23), "10^23", "100000", "",
           "http://[::1", "http://h:port/", "ftp://h/", "http://h/" + "a" * 3000, "\x00", "\x07",
           "-", "--", "{cardId}", "é", "1_000"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def mutated_scenarios(draw: st.DrawFn) -> str:
    """A bundled scenario with a slice replaced by random or hostile text."""
    text = draw(st.sampled_from(BUNDLED))
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 40)))
    patch = draw(st.text(max_size=30) | st.sampled_from(HOSTILE + ["&a [1]", "*a", "[[[[", "{"]))
    return text[:start] + patch + text[end:]


def loads_or_explains(text: str) -> None:
    try:
        load_scenario_text(text, "fuzz.yaml")
    except ScenarioError as exc:
        assert str(exc).startswith("fuzz.yaml:") and exc.line >= 1


@FUZZ
@given(mutated_scenarios())
def test_a_mutated_scenario_loads_or_names_its_problem(text: str) -> None:
    loads_or_explains(text)


@FUZZ
@given(json_values)
def test_any_yaml_document_loads_or_names_its_problem(data: object) -> None:
    loads_or_explains(yaml.safe_dump(data))


@FUZZ
@given(st.text(max_size=300))
def test_any_text_loads_or_names_its_problem(text: str) -> None:
    loads_or_explains(text)


def validate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = cli.main(["validate", *argv])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


lines = st.lists(
    st.binary(max_size=60) | json_values.map(lambda v: yaml.safe_dump(v).encode()), max_size=6
).map(b"\n".join)


@FUZZ
@given(body=lines, suffix=st.sampled_from([".json", ".jsonl", ".txt"]))
def test_validate_reports_any_bytes_without_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, capsys, body: bytes, suffix: str
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(body)
    code, err = validate(capsys, "--max-document-size", "200", str(path))
    assert code in (0, 1, 2) and "Traceback" not in err


@FUZZ
@given(body=lines)
def test_validate_reads_any_stdin_without_a_traceback(capsys, monkeypatch, body: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(body)))
    code, err = validate(capsys, "-")
    assert code in (0, 1, 2) and "Traceback" not in err


def options_of(command: str) -> list[str]:
    """Every option string of ``d1sim COMMAND`` (and of its sub-actions)."""
    found: list[str] = []
    parsers = [cli.build_parser([command])._subparsers._group_actions[0].choices[command]]  # type: ignore[union-attr]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            found += [o for o in action.option_strings if o not in ("-h", "--help")]
            if isinstance(action, argparse._SubParsersAction):
                found += list(action.choices)
                parsers += list(action.choices.values())
    return found


@pytest.mark.parametrize("command", sorted(set(cli.COMMANDS)))
def test_every_command_parses_or_exits_2_with_the_option_named(command: str, capsys) -> None:
    words = st.sampled_from(options_of(command)) | st.sampled_from(HOSTILE) | st.text(max_size=12)

    @FUZZ
    @given(st.lists(words, max_size=6))
    def parse(argv: list[str]) -> None:
        full = [command, *argv]
        try:
            cli.build_parser(full).parse_args(full)
        except SystemExit as exit_:
            err = capsys.readouterr().err
            assert exit_.code == 2 and "error: " in err and "Traceback" not in err, err

    parse()
