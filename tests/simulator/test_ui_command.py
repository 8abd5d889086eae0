"""``d1sim ui --db FILE --port 0`` as a user runs it: a real process over a replay's outbox."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from d1sim.simulator.cli import main
from d1sim.simulator.delivery.outbox import Outbox
from d1sim.simulator.receiver.app import create_app
from d1sim.simulator.web.servers import running_server
from tests.simulator.conftest import WEBHOOK

pytestmark = pytest.mark.slow
START_SECONDS = 30.0


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An outbox holding ``d1sim replay happy-path`` sent to the reference receiver."""
    db = tmp_path_factory.mktemp("ui") / "run.db"
    with running_server(create_app()) as url:
        assert main(["replay", "happy-path", "--target", url + WEBHOOK, "--db", str(db), "--no-progress"]) == 0
    return db


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first line the process prints, waited for at most ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"d1sim ui printed nothing in {timeout:g} s") from None


def _default_sigint() -> None:
    # A shell that starts jobs in the background may hand 'ignore SIGINT' down: undo it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def ui_process(replayed: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("D1SIM_")}
    proc = subprocess.Popen([sys.executable, "-m", "d1sim", "ui", "--db", str(replayed), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_default_sigint)
    try:
        banner = _first_line(proc, START_SECONDS)
        match = re.fullmatch(rf"d1sim ui: (http://127\.0\.0\.1:(\d+))/ \(database {re.escape(str(replayed))}, "
                             r"read-only\)\n", banner)
        assert match and int(match.group(2)) > 0, banner
        yield proc, match.group(1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ui_serves_a_replay_outbox_on_a_free_port_and_stops_cleanly(
    replayed: Path, ui_process: tuple[subprocess.Popen[str], str], stop: signal.Signals
) -> None:
    proc, url = ui_process
    with Outbox(replayed) as box:
        [run] = box.runs()
        delivered = box.deliveries(run.id, state="delivered")
    card = delivered[0].delivery.card_ids[0]
    carrying = [d for d in delivered if card in d.delivery.card_ids]
    with httpx.Client(base_url=url, timeout=10) as http:
        runs = http.get("/")
        assert runs.status_code == 200 and f'href="/runs/{run.id}"' in runs.text and "happy-path" in runs.text
        page = http.get(f"/runs/{run.id}").text
        assert f'href="/deliveries/{delivered[0].id}"' in page and "delivered" in page
        timeline = http.get(f"/cards/{card}").text
        assert 'class="box path visited"' in timeline
        shown = re.findall(r'<li class="entry">\s*<h3>([^<]+)</h3>', timeline)
        assert sorted(shown) == sorted(s for d in carrying for s in d.delivery.statuses) and len(shown) > 2
        assert all(f'href="/deliveries/{d.id}"' in timeline for d in carrying)
        detail = http.get(f"/deliveries/{delivered[0].id}").text
        assert "As sent; credentials are masked." in detail and "x-correlation-id" in detail
        assert http.post(f"/deliveries/{delivered[0].id}/resend").status_code == 405  # read-only
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err and "d1sim ui: stopped" in err
