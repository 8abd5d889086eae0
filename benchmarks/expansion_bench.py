"""Peak memory (RSS) and time of expanding a 100,000-card scenario; the target is < 300 MB.

Run: ``.venv/bin/python benchmarks/expansion_bench.py [--cards N] [--scenario NAME] [--json FILE]``.
The stream is consumed and dropped as it comes, the way the outbox consumes it, so the figure is
what expansion itself holds, not what a caller chooses to keep.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
from pathlib import Path

from d1sim.contracts.scenario.expansion import ExpansionSummary, expand_scenario
from d1sim.contracts.scenario.loading import load_bundled

TARGET_MB = 300


def peak_rss_mb() -> float:
    """The process's peak resident set so far.

    On Linux ``ru_maxrss`` survives exec: a benchmark started from a big process (a long pytest
    run) would report its parent's size. ``VmHWM`` belongs to this program's memory alone.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # macOS: bytes


def measure(name: str, cards: int) -> dict[str, float | int | str]:
    """Expand bundled scenario ``name`` scaled to ``cards`` cards; return the figures."""
    scenario = load_bundled(name)
    scenario = dataclasses.replace(
        scenario, cards=dataclasses.replace(scenario.cards, ids=(), count=cards)
    )
    before = peak_rss_mb()
    began = time.perf_counter()
    summary = ExpansionSummary()
    for item in expand_scenario(scenario):
        summary.add(item)
    return {
        "scenario": name,
        "cards": summary.cards,
        "deliveries": summary.deliveries,
        "operations": summary.operations,
        "megabytes_sent": round(summary.bytes / 2**20, 1),
        "seconds": round(time.perf_counter() - began, 1),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "target_mb": TARGET_MB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--scenario", default="bulk-batch")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    figures = measure(args.scenario, args.cards)
    if args.json:
        args.json.write_text(json.dumps(figures))
    print(
        f"expanded {figures['cards']:,} cards ({args.scenario}): "
        f"{figures['deliveries']:,} deliveries, "
        f"{figures['operations']:,} operations, {figures['megabytes_sent']} MB of bodies "
        f"in {figures['seconds']} s; peak RSS {figures['peak_rss_mb']} MB "
        f"(before expanding {figures['rss_before_mb']} MB; target < {TARGET_MB} MB)"
    )
    return 0 if float(figures["peak_rss_mb"]) < TARGET_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
