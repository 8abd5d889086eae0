"""A ``d1sim serve`` killed with SIGKILL leaves no planning process behind."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from d1sim.simulator.lifeline import is_running
from tests.simulator.d1_support import HOOK, ISSUER, ORDER, ServeProcess, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
GONE_WITHIN = 15.0  # seconds; the watch polls every 0.5 s, the kernel signal is immediate


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def descendants(root: int) -> set[int]:
    """Every living process below ``root``."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            parents[int(entry)] = stat[1]
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running and not a zombie (an exited orphan may wait for a PID 1 that never reaps)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


@pytest.mark.slow
def test_planning_processes_exit_when_serve_is_killed(tmp_path: Path) -> None:
    config = tmp_path / "issuers.yaml"
    config.write_text(f"- issuerId: {ISSUER}\n  webhookUrl: http://127.0.0.1:9{HOOK}\n  requireToken: false\n")
    serve = ServeProcess("--db", str(tmp_path / "d1.db"), "--config", str(config), "--plan-workers", "1")
    try:
        order = f"{serve.url}/banking/v1/issuers/{ISSUER}/physicalCards/card-o/operations:production"
        assert httpx.post(order, json=ORDER, timeout=10).status_code == 202
        status = order.replace("operations:production", "productionStatus")
        wait_for(lambda: httpx.get(f"{serve.url}/_sim").json()["planning"] == 0, what="the order planned")
        assert httpx.get(status, timeout=10).status_code == 200
        children = wait_for(lambda: descendants(serve.proc.pid), what="a planning process")
    finally:
        serve.proc.send_signal(signal.SIGKILL)
        serve.proc.wait(timeout=10)  # not communicate(): orphans would hold its pipes open
        for pipe in (serve.proc.stdout, serve.proc.stderr):
            pipe.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + GONE_WITHIN
    while (left := {pid for pid in children if alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes of the killed server still running: {sorted(left)}"
    assert not is_running(serve.proc.pid)
