"""The CLI's manners: --version, a did-you-mean for a typo in a sub-command, no Python reprs."""

from __future__ import annotations

import pytest

from d1sim import __version__
from d1sim.simulator.cli import main
from d1sim.simulator.reports.check import raw_text


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"d1sim {__version__}"


@pytest.mark.parametrize(("argv", "usage", "hint"), [
    (["check", "--taget", "http://127.0.0.1:1/"], "usage: d1sim check", "--taget (did you mean --target?)"),
    (["runs", "list", "--dbb", "x.db"], "usage: d1sim runs list", "--dbb (did you mean --db?)"),
    (["ui", "--prot=8070"], "usage: d1sim ui", "--prot=8070 (did you mean --port?)"),
])
def test_a_misspelled_flag_gets_the_subcommand_usage_and_a_suggestion(
    argv: list[str], usage: str, hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(usage) and hint in err


def test_a_word_unlike_any_flag_gets_no_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["runs", "list", "--zzzzzz"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --zzzzzz" in err and "did you mean" not in err


@pytest.mark.parametrize(("raw", "shown"), [
    (b"", "(empty body)"),
    (b"not json\n", "not json\\n"),
    (b"\xff\xfeok", "\\xff\\xfeok"),
])
def test_bodies_that_are_not_json_read_as_text_not_as_python_bytes(raw: bytes, shown: str) -> None:
    assert raw_text(raw) == shown
