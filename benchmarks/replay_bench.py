"""`d1sim replay` of the bulk scenarios against the reference receiver, beside a bare posting loop.

For each scenario (default: bulk-batch and bulk-file), in the same run and against the same
reference receiver (`d1sim receiver`, its own process, in-memory state, reset between runs):

- the ceiling: the scenario's bodies, expanded beforehand, POSTed by ``concurrency`` threads
  sharing one ``httpx.Client`` — no outbox, no scheduling, no retries;
- d1sim: in a fresh process, the scenario planned into a fresh durable outbox (timed apart),
  then ``deliver_run`` (scheduler, per-card order, every attempt committed to SQLite).

Reported: notifications/s (POSTs per second; medians of ``--repeat`` runs), the ratio
d1sim/ceiling (target >= 0.7), the planning time and d1sim's peak RSS. Loopback only; every loop is bounded.

Usage::

    python benchmarks/replay_bench.py                        # both scenarios, 3 runs each
    python benchmarks/replay_bench.py --scenarios bulk-batch --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from d1sim.contracts.scenario.expansion import expand_scenario
from d1sim.contracts.scenario.loading import load_bundled
from d1sim.contracts.scenario.timeline import Delivery

CONCURRENCY = 4
TARGET_RATIO = 0.7
WEBHOOK = "/notifications/d1/v2/issuers/ISSUER0001/cards"


def start_receiver() -> tuple[subprocess.Popen[str], str]:
    """`d1sim receiver --port 0` in its own process; wait (bounded) for the URL it prints."""
    child = subprocess.Popen([sys.executable, "-m", "d1sim", "receiver", "--port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 30
    assert child.stdout is not None
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if "listening on" in line:
            return child, line.rsplit(" ", 1)[-1].strip()
    child.kill()
    raise SystemExit("the reference receiver did not start within 30 s")


def bodies(name: str) -> list[bytes]:
    return [d.body for d in expand_scenario(load_bundled(name)) if isinstance(d, Delivery)]


def ceiling(url: str, payloads: list[bytes]) -> float:
    """Seconds for ``CONCURRENCY`` threads to POST every body once."""
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    items, lock = iter(payloads), threading.Lock()
    with httpx.Client(limits=limits, timeout=10) as client:
        def work() -> None:
            while True:
                with lock:
                    body = next(items, None)
                if body is None:
                    return
                client.post(url + WEBHOOK, content=body, headers={"Content-Type": "application/json"})
        threads = [threading.Thread(target=work) for _ in range(CONCURRENCY)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        return time.perf_counter() - started


def replay_child(url: str, name: str) -> None:
    """Child process: plan NAME into a fresh outbox, deliver it; print timings and peak RSS."""
    from d1sim.simulator.delivery.engine import SenderConfig, deliver_run
    from d1sim.simulator.delivery.outbox import Outbox

    config = SenderConfig(url + WEBHOOK, concurrency=CONCURRENCY)
    with tempfile.TemporaryDirectory() as tmp, Outbox(Path(tmp) / "o.db") as outbox:
        started = time.perf_counter()
        run_id = outbox.create_run(name, config.target, config.public_options())
        outbox.add_deliveries(run_id, (d for d in expand_scenario(load_bundled(name)) if isinstance(d, Delivery)))
        planned = time.perf_counter()
        summary = deliver_run(outbox, run_id, config)
        done = time.perf_counter()
    assert summary.dead == 0, summary
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"plan": planned - started, "deliver": done - planned, "rss": rss}))


def replay(url: str, name: str) -> dict[str, float]:
    """Run :func:`replay_child` in a fresh process (its own peak RSS)."""
    out = subprocess.run([sys.executable, __file__, "--child", url, name], check=True,
                         capture_output=True, text=True, timeout=900)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="bulk-batch,bulk-file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("URL", "SCENARIO"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        replay_child(*args.child)
        return 0
    child, url = start_receiver()
    try:
        print(f"replay benchmark: concurrency {CONCURRENCY}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}, medians of {args.repeat} runs")
        print("| scenario | POSTs | ceiling POST/s | d1sim deliver POST/s | ratio | planning (expand + store) "
              "| d1sim peak RSS |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name in args.scenarios.split(","):
            payloads = bodies(name)
            base, ours, plans, rss = [], [], [], []
            for _ in range(args.repeat):
                httpx.post(url + "/_receiver/reset", timeout=10)
                base.append(len(payloads) / ceiling(url, payloads))
                httpx.post(url + "/_receiver/reset", timeout=10)
                figures = replay(url, name)
                ours.append(len(payloads) / figures["deliver"])
                plans.append(figures["plan"])
                rss.append(figures["rss"])
            b, o = statistics.median(base), statistics.median(ours)
            print(f"| {name} | {len(payloads):,} | {b:,.0f} | {o:,.0f} | {o / b:.2f}x "
                  f"(target >= {TARGET_RATIO}) | {statistics.median(plans):.2f} s | {max(rss):.0f} MB |")
    finally:
        child.kill()
        child.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
