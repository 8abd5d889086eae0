"""``python -m benchmarks``: every benchmark beside its anchor, then the figures in BENCHMARKS.md.

Each benchmark runs as its own script (``benchmarks/*_bench.py``) in a fresh process and writes
its figures to a JSON file; this runner turns them into one table, d1sim beside what it is
measured against in the same run (wrk on nginx for sending, the parse-only loop for validate,
hypothesis-jsonschema for strategies, a no-op endpoint for the mock D1, ...), and rewrites the
block between the ``benchmarks:begin``/``end`` markers of BENCHMARKS.md with the machine, the
Python version and the date. ``--quick`` runs every benchmark small, prints the figures and
writes nothing: a smoke test that the benchmarks still run, with no thresholds asserted.

Usage::

    python -m benchmarks                      # everything, full size (an hour or more)
    python -m benchmarks --quick              # a few minutes, prints only
    python -m benchmarks sending validate     # only these, full size
    python -m benchmarks --list
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORT = ROOT / "BENCHMARKS.md"
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"
NO_ANCHOR = 3  # a benchmark's exit code when its anchor (nginx, wrk, another venv) is missing

Row = tuple[str, str, str, str]  # what, d1sim, anchor, ratio


@dataclass(frozen=True)
class Bench:
    """One benchmark script: its arguments, full and quick, and how its figures read."""

    name: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    rows: Callable[[Any], list[Row]]

    @property
    def script(self) -> Path:
        return HERE / f"{self.name}_bench.py"


def _n(value: float, unit: str = "/s") -> str:
    return f"{value:,.0f}{unit}"


def _sending(f: dict[str, Any]) -> list[Row]:
    return [(f"`d1sim replay {r['scenario']} --concurrency 8{_senders(r)}` end to end ({r['posts']:,} POSTs), POSTs/s",
             _n(r["d1sim"]), f"wrk -t1 -c8 on nginx 204: {_n(r['wrk'])}", f"{r['ratio']:.4f}")
            for r in f["runs"]]


def _senders(run: dict[str, Any]) -> str:
    chosen = run.get("senders", "auto")
    return "" if chosen == "auto" else f" --senders {chosen}"


def _planning(f: dict[str, Any]) -> list[Row]:
    before, after = f["before"], f["after"]
    return [(f"planning {f['scenario']} (expansion + storing), s", f"{after['plan']:.2f} s",
             f"code at {f['baseline']}: {before['plan']:.2f} s", f"{before['plan'] / after['plan']:.2f}x faster")]


def _validate(f: dict[str, Any]) -> list[Row]:
    return [(f"`d1sim validate`, {f['operations']:,} operations, ops/s", _n(f["end_to_end_per_s"]),
             f"read + orjson.loads per line: {_n(f['ceiling_per_s'])}", f"{f['ratio']:.2f}")]


def _strategies(f: dict[str, Any]) -> list[Row]:
    ours, theirs = f["results"].values()
    return [("`notifications()` strategy, examples/s", f"{ours['per_second']:,.0f}",
             f"hypothesis-jsonschema: {theirs['per_second']:,.1f}", f"{f['speedup']:.0f}x")]


def _serve(f: dict[str, Any]) -> list[Row]:
    o = f["orders"]
    return [("mock D1 production orders, req/s", _n(o["orders_per_s"]),
             f"no-op Flask endpoint: {_n(o['noop_per_s'])}", f"{o['ratio']:.2f}")]


def _delivery(f: dict[str, Any]) -> list[Row]:
    return [("`deliver_run` to a trivial receiver, POSTs/s", _n(f["deliver_per_s"]),
             f"bare httpx loop: {_n(f['ceiling_per_s'])}", f"{f['ratio']:.2f}")]


def _replay(results: list[dict[str, Any]]) -> list[Row]:
    return [(f"replay {r['scenario']} delivery to the reference receiver, POSTs/s", _n(r["deliver_per_s"]),
             f"httpx threads, nothing stored: {_n(r['ceiling_per_s'])}",
             f"{r['deliver_per_s'] / r['ceiling_per_s']:.2f}")
            for r in results]


def _expansion(f: dict[str, Any]) -> list[Row]:
    return [(f"expanding {f['cards']:,} cards ({f['scenario']}), peak RSS", f"{f['peak_rss_mb']:.0f} MB",
             f"before expanding: {f['rss_before_mb']:.0f} MB", f"{f['seconds']} s")]


def _scaling(points: list[dict[str, Any]]) -> list[Row]:
    first, last = points[0], points[-1]
    grow = last["cards"] / first["cards"]
    rows = []
    for key, label in (("expand", "expansion"), ("validate", "validate"), ("deliver", "delivery")):
        if f"{key}_s" in last:
            guessed = " (extrapolated)" if key == "deliver" and last.get("deliver_extrapolated") else ""
            rows.append((f"{label} time, {first['cards']:,} to {last['cards']:,} cards{guessed}",
                         f"{first[f'{key}_s']:.2f} s to {last[f'{key}_s']:.1f} s", f"linear: x{grow:,.0f}",
                         f"x{last[f'{key}_s'] / first[f'{key}_s']:,.0f}"))
    rss = max(p["expand_rss_mb"] for p in points), max(p["validate_rss_mb"] for p in points)
    rows.append(("peak RSS, expansion / validate, largest of all counts", f"{rss[0]:.0f} / {rss[1]:.0f} MB",
                 "flat", f"smallest count: {first['expand_rss_mb']:.0f} / {first['validate_rss_mb']:.0f} MB"))
    return rows


def _ui(f: dict[str, Any]) -> list[Row]:
    slowest = f["slowest"]
    return [(f"inspection UI over a run of {f['deliveries']:,} deliveries, slowest page median",
             f"{f['medians_ms'][slowest]:.0f} ms ({slowest})", f"target: < {f['target_ms']:.0f} ms",
             "met" if f["medians_ms"][slowest] < f["target_ms"] else "NOT met")]


SUITE = (
    Bench("sending", ("--repeat", "3"), ("--scenario", "bulk-batch", "--repeat", "1", "--wrk-seconds", "1"),
          _sending),
    Bench("planning", ("--repeat", "5"), ("--scenario", "bulk-batch", "--repeat", "1"), _planning),
    Bench("validate", (), ("--operations", "20000", "--repeat", "1"), _validate),
    Bench("strategies", (), ("--examples", "100", "--repeat", "1"), _strategies),
    Bench("serve", (), ("--orders", "200", "--cards", "20", "--repeat", "1"), _serve),
    Bench("delivery", (), ("-n", "1000", "--repeat", "1"), _delivery),
    Bench("replay", (), ("--scenarios", "bulk-batch", "--repeat", "1"), _replay),
    Bench("expansion", (), ("--cards", "2000"), _expansion),
    Bench("scaling", (), ("--cards", "1000", "2000", "--deliver-up-to", "1000", "--no-plot"), _scaling),
    Bench("ui", (), ("-n", "2000", "--repeat", "1"), _ui),
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The runner's options; benchmark names are checked against the suite."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these benchmarks (see --list)")
    parser.add_argument("--quick", action="store_true", help="small sizes, print only (a smoke test)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite BENCHMARKS.md")
    args = parser.parse_args(argv)
    known = [b.name for b in SUITE]
    if unknown := [n for n in args.names if n not in known]:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(known)}")
    return args


def run(bench: Bench, quick: bool) -> tuple[list[Row], str | None]:
    """Run one benchmark script; its rows, and what went wrong (None when it ran)."""
    with tempfile.TemporaryDirectory(prefix="d1sim-bench-") as folder:
        figures = Path(folder) / "figures.json"
        args = bench.quick if quick else bench.full
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run([sys.executable, str(bench.script), *args, "--json", str(figures)],
                              cwd=ROOT, env=env, check=False)
        if done.returncode == NO_ANCHOR:
            return [], "skipped: its anchor is not installed here (see its message)"
        if not figures.exists():
            return [], f"exited {done.returncode} without figures"
        rows = bench.rows(json.loads(figures.read_text()))
        return rows, None if done.returncode == 0 else f"missed a target (exit {done.returncode})"


def table(rows: list[Row]) -> str:
    """The figures as a Markdown table."""
    lines = ["| measured | d1sim | anchor, same run | ratio |", "|---|---:|---|---:|"]
    return "\n".join(lines + [f"| {' | '.join(row)} |" for row in rows])


def machine() -> str:
    """CPUs, memory, OS, Python version and today's date, for the report's header."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} CPUs, {memory:.0f} GiB, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end; "
            f"{datetime.now(UTC):%Y-%m-%d}")


def rewrite(report: str, block: str) -> str:
    """``report`` with the text between the markers replaced by ``block`` (markers kept)."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(report):
        raise ValueError(f"BENCHMARKS.md has no {BEGIN} ... {END} block to rewrite")
    return pattern.sub(lambda _: f"{BEGIN}\n{block}\n{END}", report)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks; print the table; rewrite BENCHMARKS.md after a full run."""
    args = parse_args(argv)
    if args.list:
        for bench in SUITE:
            print(f"{bench.name:<12} {bench.script.relative_to(ROOT)}")
        return 0
    chosen = [b for b in SUITE if not args.names or b.name in args.names]
    rows: list[Row] = []
    problems = []
    began = time.monotonic()
    for bench in chosen:
        print(f"== {bench.name}", flush=True)
        found, problem = run(bench, args.quick)
        rows += found
        if problem:
            problems.append(f"{bench.name}: {problem}")
    text = f"Last run: {machine()}; {time.monotonic() - began:,.0f} s.\n\n{table(rows)}"
    print(f"\n{text}")
    for problem in problems:
        print(f"note: {problem}", file=sys.stderr)
    if not (args.quick or args.no_write or args.names):
        REPORT.write_text(rewrite(REPORT.read_text(), text))
        print(f"rewrote the figures in {REPORT.name}")
    # Missed targets are reported, never fatal; a benchmark that could not run at all is.
    return 1 if any("without figures" in p for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
