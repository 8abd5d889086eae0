"""The CI-sized reliability campaign: its figures must say nothing was lost, leaked or left over."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.soak.reliability import QUICK, SLOW, campaign


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts processes in /proc")
def test_the_quick_campaign_loses_nothing_and_accounts_for_every_fault(tmp_path: Path) -> None:
    figures = campaign(tmp_path, QUICK)
    for run in ("replay", "serve"):
        assert figures[run]["lost"] == 0, figures[run]
        assert figures[run]["received"] == figures[run]["expected"] > 0
    assert figures["replay"]["final_exit"] == 0
    assert figures["serve"]["kills"] == QUICK.serve_kills and figures["serve"]["orphans_left"] == 0
    for kind, account in figures["faults"].items():
        assert account["unaccounted"] == 0 and account["pending"] == 0, kind
        assert account["failed_attempts_recorded"] == account["injected"] > 0, (kind, account)
    assert figures["faults"][SLOW]["dead"] == figures["faults"][SLOW]["planned"]
    assert figures["slow_clients"]["held"] == QUICK.slow_clients
