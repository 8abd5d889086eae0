"""`d1sim replay` end to end against nginx, beside wrk on the same nginx in the same run.

The anchor is what this machine's HTTP stack can do: wrk (one thread, 8 connections) POSTing the
vendor page's shipment-update body to nginx answering 204 (``benchmarks/anchor.py``). d1sim is
``d1sim replay SCENARIO --concurrency 8 --target <nginx>`` as a user runs it, in a fresh process
with a fresh outbox, timed from start to exit: start-up, planning, sending, recording every
attempt, judging. wrk and d1sim alternate; the ratio of their medians is the figure. Two
workloads by default: ``bulk-file`` (5,000 POSTs of up to ten operations each) and
``scenarios/one-per-post.yaml`` (50,000 POSTs of one operation, like wrk's body).
``--profile`` records one more d1sim run under py-spy and prints where its time went.

Usage::

    python benchmarks/sending_bench.py                          # both workloads, 3 runs each
    python benchmarks/sending_bench.py --scenario bulk-file --repeat 1 --profile
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from anchor import WEBHOOK, Nginx, missing_tools, wrk

from d1sim.contracts.scenario.expansion import planned_deliveries, summarize
from d1sim.simulator.delivery.engine import SenderConfig, deliver_run
from d1sim.simulator.delivery.outbox import Outbox
from d1sim.simulator.replay.run import Replayer, resolve_scenarios

CONCURRENCY = 8
HERE = Path(__file__).resolve().parent
WORKLOADS = ("bulk-file", str(HERE / "scenarios" / "one-per-post.yaml"))
NO_ANCHOR = 3  # exit code: the anchor is not installed here (python -m benchmarks skips it)


def replay_command(scenario: str, url: str, db: Path, senders: str = "auto") -> list[str]:
    """``d1sim replay`` as a user runs it; ``senders`` "auto" leaves ``--senders`` to its default."""
    chosen = [] if senders == "auto" else ["--senders", senders]
    return [sys.executable, "-m", "d1sim", "replay", scenario, "--concurrency",
            str(CONCURRENCY), "--target", url + WEBHOOK, "--db", str(db), "--no-progress", *chosen]


def replay_seconds(scenario: str, url: str, prefix: list[str] | None = None, senders: str = "auto") -> float:
    """Wall seconds of one ``d1sim replay`` in a fresh process with a fresh outbox."""
    with tempfile.TemporaryDirectory(prefix="d1sim-send-") as folder:
        began = time.perf_counter()
        done = subprocess.run([*(prefix or []), *replay_command(scenario, url, Path(folder) / "o.db", senders)],
                              capture_output=True, text=True, timeout=1800, check=False)
        seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"d1sim replay failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def measure(scenario: str, repeat: int, wrk_seconds: float, senders: list[str]) -> list[dict[str, Any]]:
    """Alternate wrk and d1sim (each ``--senders`` value) ``repeat`` times on one nginx; medians
    and their ratios, one row per ``--senders`` value."""
    ref = resolve_scenarios([scenario])[0]
    posts = summarize(planned_deliveries(ref.scenario)).deliveries
    anchor: list[float] = []
    ours: dict[str, list[float]] = {s: [] for s in senders}
    with Nginx() as nginx:
        for _ in range(repeat):
            anchor.append(wrk(nginx.url + WEBHOOK, seconds=wrk_seconds).requests_per_second)
            for chosen in senders:
                ours[chosen].append(posts / replay_seconds(scenario, nginx.url, senders=chosen))
    wrk_rate = statistics.median(anchor)
    return [{"scenario": ref.scenario.name, "posts": posts, "senders": chosen, "wrk": wrk_rate,
             "d1sim": statistics.median(rates), "ratio": statistics.median(rates) / wrk_rate}
            for chosen, rates in ours.items()]


def profile(scenario: str, rate: int = 250) -> list[tuple[str, float]]:
    """One d1sim run under py-spy (every thread of every process, idle samples left out): share of
    samples per part."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory(prefix="d1sim-prof-") as folder, Nginx() as nginx:
        raw = Path(folder) / "stacks.txt"
        replay_seconds(scenario, nginx.url, [spy, "record", "-r", str(rate), "-f", "raw", "-o",
                                             str(raw), "--threads", "--subprocesses", "--"])
        return summarize_stacks(raw.read_text())


# The first part (in this order) with a matching frame names the part a sample belongs to.
PARTS = (
    ("expansion (planning)", r"contracts/(scenario|payloads)/"),
    ("checkpointing the WAL (a thread of its own)", r"_checkpoint_every"),
    ("hearing the writer process: parts in, commits said (pipes)", r"Writer\.(part|_hear|committed)"),
    ("handing attempt rows to the writer process (pipe)", r"Writer\.(record|_send)"),
    ("handing deliveries to sender processes and back (pipes)",
     r"_Router\.|_Lane\.|_from_router|_(un)?pack \(.*lanes\.py"),
    ("storing planned deliveries (SQLite)", r"add_deliveries|store_planned"),
    ("recording attempts (SQLite)", r"record_attempts|record_fields|_flush"),
    ("building requests, reading answers (Python)",
     r"CurlWorkers\._(send|answer|finished|begin_waiting|refresh)|(_keep|_retry_after|<lambda>) \(.*libcurl\.py"
     r"|Poster\."),
    ("libcurl transfers (C: sockets, parsing)", r"CurlWorkers\._perform"),
    ("waiting for answers (libcurl select)", r"CurlWorkers\.collect"),
    ("httpx/httpcore request and response", r"httpx/|httpcore/|h11/"),
    ("scheduler", r"Driver\.|retry\.py"),
    ("reading the outbox", r"Outbox\.owed|Outbox\.summary|final_statuses"),
    ("judging expectations", r"Replayer\.evaluate"),
    ("start-up (imports)", r"importlib"),
    ("printing the summary", r"rich/|print_results"),
    ("no Python frame (native code, GIL)", r"^thread \("),
)


def summarize_stacks(text: str) -> list[tuple[str, float]]:
    """py-spy raw output (``frame;frame;... count`` lines) as shares of samples per part."""
    counts: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")[::-1]  # innermost first: the most specific part wins
        part = next((name for name, pattern in PARTS for f in frames if re.search(pattern, f)), "other")
        counts[part] += int(n)
    total = sum(counts.values()) or 1
    return [(part, n / total) for part, n in counts.most_common()]


def phases(scenario: str) -> dict[str, float]:
    """Seconds of each phase of one replay, one after the other in this process: plan, deliver, judge."""
    with tempfile.TemporaryDirectory(prefix="d1sim-phases-") as folder, Nginx() as nginx:
        ref = resolve_scenarios([scenario])[0]
        config = SenderConfig(nginx.url + WEBHOOK, concurrency=CONCURRENCY)
        with Outbox(Path(folder) / "o.db") as outbox:
            replayer = Replayer(outbox, config)
            began = time.perf_counter()
            run_id = replayer._create(ref, "bench", {"key": "bench", "tag": "bench"})
            outbox.add_deliveries(run_id, replayer._plan(ref))  # alone: a replay overlaps the two
            planned = time.perf_counter()
            deliver_run(outbox, run_id, config)
            delivered = time.perf_counter()
            replayer.evaluate(ref, run_id)
            judged = time.perf_counter()
    return {"plan": planned - began, "deliver": delivered - planned, "judge": judged - delivered}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", nargs="+", default=list(WORKLOADS),
                        help="bundled scenario names or files (default: bulk-file and one-per-post)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wrk-seconds", type=float, default=5.0)
    parser.add_argument("--profile", action="store_true", help="add one py-spy profiled run of the first")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--senders", nargs="+", default=["auto"], metavar="N",
                        help="--senders values to run side by side (default: auto, the replay's default)")
    args = parser.parse_args(argv)
    if missing := missing_tools():
        print(f"missing {', '.join(missing)}: run benchmarks/setup.sh", file=sys.stderr)
        return NO_ANCHOR
    runs = [run for scenario in args.scenario for run in measure(scenario, args.repeat, args.wrk_seconds, args.senders)]
    figures: dict[str, object] = {"runs": runs}
    if args.profile:
        figures["phases"] = phases(args.scenario[0])
        figures["profile"] = profile(args.scenario[0])
    if args.json:
        args.json.write_text(json.dumps(figures))
    for run in runs:
        print(f"{run['scenario']} (--senders {run['senders']}): {run['posts']:,} POSTs; wrk {run['wrk']:,.0f} req/s, "
              f"d1sim replay end to end {run['d1sim']:,.0f} POSTs/s: ratio {run['ratio']:.4f}")
    if "phases" in figures:
        print("  phases in one process: " + ", ".join(f"{k} {v:.2f} s" for k, v in figures["phases"].items()))  # type: ignore[union-attr]
        print("  py-spy samples of one run, by part:")
    for part, share in figures.get("profile", []):  # type: ignore[union-attr]
        print(f"  {share:6.1%}  {part}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
