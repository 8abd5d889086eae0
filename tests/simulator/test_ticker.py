"""Progress lines off a terminal: long commands show life in a CI log every few seconds."""

from __future__ import annotations

import io
import threading
from types import SimpleNamespace

import pytest

from d1sim.simulator.replay.output import ProgressBars
from d1sim.simulator.ticker import Ticker


def test_a_line_per_interval_with_count_total_and_rate() -> None:
    done, ticked = [0], threading.Event()

    class Stream(io.StringIO):
        def flush(self) -> None:
            ticked.set()

    out = Stream()
    with Ticker("d1sim validate", lambda: done[0], "operations", interval=0.01, stream=out, total=lambda: 2000):
        done[0] = 1500
        assert ticked.wait(5)
    line = out.getvalue().splitlines()[0]
    assert line.startswith("d1sim validate: 1,500/2,000 operations (") and "/s, " in line


def test_a_quick_command_prints_nothing() -> None:
    out = io.StringIO()
    with Ticker("d1sim check", lambda: 1, "checks done", interval=60, stream=out):
        pass
    assert out.getvalue() == ""


def test_replay_off_a_terminal_counts_settled_deliveries(capsys: pytest.CaptureFixture[str]) -> None:
    bars = ProgressBars(enabled=True, interval=0.01)  # stderr is captured: not a terminal
    try:
        advance = bars.for_scenario(SimpleNamespace(), 3)
        for state in ("delivered", "pending", "dead"):
            advance(SimpleNamespace(state=state))
        bars.ticker.emit()
    finally:
        bars.close()
    assert "d1sim replay: 2/3 deliveries settled (" in capsys.readouterr().err


def test_no_progress_means_no_lines(capsys: pytest.CaptureFixture[str]) -> None:
    bars = ProgressBars(enabled=False, interval=0.01)
    assert bars.for_scenario(SimpleNamespace(), 3) is None and bars.ticker is None
    bars.close()
    assert capsys.readouterr().err == ""
