"""``d1sim load``: Locust in distributed mode (a master, two workers) delivers every notification once."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from d1sim.contracts.scenario.expansion import planned_deliveries
from d1sim.contracts.scenario.loading import load_scenario_file
from d1sim.simulator.load.lanes import LanePlan
from d1sim.simulator.receiver import ReceiverConfig, running_receiver

# Found, not imported: importing locust here would monkey-patch this process with gevent.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("locust") is None,
                                reason="needs the optional extra d1sim[load]")

ROOT = Path(__file__).resolve().parents[2]
HAPPY = ROOT / "scenarios" / "happy-path.yaml"


def scenario_file(folder: Path, cards: int) -> Path:
    data = yaml.safe_load(HAPPY.read_text())
    data["cards"] = {"count": cards, "spacing": "1s"}
    path = folder / "many-happy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def d1sim(*args: str, env: dict[str, str] | None = None, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "d1sim", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=False)


def test_workers_share_the_lanes_exactly_once_and_in_order(tmp_path: Path) -> None:
    scenario = load_scenario_file(scenario_file(tmp_path, 7))
    shares = [LanePlan(scenario, index=i, count=3) for i in range(3)]
    sent = []
    for plan in shares:
        while (lane := plan.next_lane()) is not None:
            assert [d.seq for d in lane] == sorted(d.seq for d in lane) and len({d.key for d in lane}) == 1
            sent += lane
            plan.lane_done()
    assert sorted(d.seq for d in sent) == [d.seq for d in planned_deliveries(scenario)]
    assert all(plan.in_flight == 0 and plan.exhausted for plan in shares)


def test_a_worker_index_outside_the_expected_workers_is_refused(tmp_path: Path) -> None:
    from d1sim.simulator.errors import UsageError

    with pytest.raises(UsageError, match="--expect-workers"):
        LanePlan(load_scenario_file(scenario_file(tmp_path, 2)), index=2, count=2)


def test_print_shows_a_master_and_its_workers_without_secrets() -> None:
    done = d1sim("load", "bulk-batch", "--target", "http://127.0.0.5:8090/hook", "--workers", "2",
                 "--master-host", "127.0.0.9", "--master-port", "5557", "--bearer-token", "s3cret", "--print")
    assert done.returncode == 0, done.stderr
    master, *workers = done.stdout.splitlines()
    assert "--master --expect-workers 2 --master-bind-host 127.0.0.9 --master-bind-port 5557" in master
    assert "--host http://127.0.0.5:8090" in master and "--d1-path /hook" in master
    assert len(workers) == 2 and all("--worker --master-host 127.0.0.9 --master-port 5557" in w for w in workers)
    assert "s3cret" not in done.stdout


def test_bad_target_is_a_usage_error() -> None:
    done = d1sim("load", "bulk-batch", "--target", "127.0.0.1:8090", "--print")
    assert done.returncode == 2
    assert "--target must be an http(s) URL" in done.stderr


@pytest.mark.slow
def test_distributed_run_delivers_every_notification_with_auth(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, 12)
    expected = list(planned_deliveries(load_scenario_file(path)))
    config = ReceiverConfig(bearer_token="load-t0ken")
    with running_receiver(config) as url:
        done = d1sim("load", str(path), "--target", url + "/notifications/d1/v2/issuers/{issuerId}/cards",
                     "--workers", "2", "--users", "4", "--run-time", "90s",
                     env={"D1SIM_BEARER_TOKEN": "load-t0ken"})
        stats = httpx.get(url + "/_receiver/stats", headers={"Authorization": "Bearer load-t0ken"}, timeout=10).json()
    assert done.returncode == 0, done.stderr[-3000:]
    assert stats["posts"] == len(expected), stats
    assert stats["rejected"] == 0 and stats["cards"] == 12
    assert stats["distinct_operations"] == sum(len(d.statuses) for d in expected)
