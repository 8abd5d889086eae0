"""Planning speed: expansion alone and expansion + storing into a fresh outbox, before vs after.

"Before" is the code of a git revision (``--baseline``, exported to a temporary folder), "after"
the working tree; each measurement runs in its own fresh process, the two alternating, and the
medians are compared. Planning is what ``d1sim replay`` does before (or while) it sends.

Usage::

    python benchmarks/planning_bench.py --baseline 27f359a               # bulk-file, 5 runs each
    python benchmarks/planning_bench.py --baseline HEAD~3 --scenario bulk-batch --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run in the child: time expansion alone, then expansion + storing (the outbox's INSERT path).
_CHILD = """
import json, sys, tempfile, time
from d1sim.contracts.scenario.expansion import planned_deliveries
from d1sim.contracts.scenario.loading import load_bundled
from d1sim.simulator.delivery.outbox import Outbox
try:  # what d1sim replay plans with; older code had no planning thread
    from d1sim.simulator.replay.planning import prefetched
except ImportError:
    prefetched = iter
scenario = load_bundled(sys.argv[1])
began = time.perf_counter()
count = sum(1 for _ in planned_deliveries(scenario))
expand = time.perf_counter() - began
with tempfile.TemporaryDirectory() as folder:
    box = Outbox(folder + "/outbox.db")
    run = box.create_run(scenario.name, "http://127.0.0.1/", {})
    began = time.perf_counter()
    stored = box.add_deliveries(run, prefetched(planned_deliveries(scenario)))
    plan = time.perf_counter() - began
    box.close()
print(json.dumps({"deliveries": count, "stored": stored, "expand": expand, "plan": plan}))
"""


def export(revision: str, into: Path) -> Path:
    """The files of ``revision`` (git archive) under ``into``; exits 2 on an unknown revision."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=False)
    if archive.returncode:
        raise SystemExit(f"cannot export {revision!r}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def measure(tree: Path, scenario: str) -> dict[str, float]:
    """One fresh process planning ``scenario`` with the code in ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}  # and cwd: "-c" puts the cwd first on sys.path
    out = subprocess.run([sys.executable, "-c", _CHILD, scenario], env=env, cwd=tree, capture_output=True,
                         text=True, check=True, timeout=900).stdout
    return json.loads(out.splitlines()[-1])


def compare(baseline: Path, scenario: str, repeat: int) -> dict[str, dict[str, float]]:
    """Alternate before/after ``repeat`` times; medians of expansion and planning seconds."""
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(repeat):
        runs["before"].append(measure(baseline, scenario))
        runs["after"].append(measure(ROOT, scenario))
    medians = {side: {key: statistics.median(r[key] for r in rs) for key in ("expand", "plan")}
               for side, rs in runs.items()}
    medians["after"]["deliveries"] = runs["after"][0]["deliveries"]
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision measured as 'before'")
    parser.add_argument("--scenario", default="bulk-file")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="d1sim-baseline-") as folder:
        result = compare(export(args.baseline, Path(folder)), args.scenario, args.repeat)
    before, after = result["before"], result["after"]
    if args.json:
        args.json.write_text(json.dumps({"scenario": args.scenario, "baseline": args.baseline, **result}))
    print(f"{args.scenario}: {after['deliveries']:,.0f} deliveries, medians of {args.repeat} runs each")
    for key, label in (("expand", "expansion alone"), ("plan", "expansion + storing")):
        print(f"  {label:<22} before {before[key]:6.2f} s  after {after[key]:6.2f} s  "
              f"speed-up {before[key] / after[key]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
