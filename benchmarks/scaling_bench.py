"""Cost curves: expansion, validate and delivery time and peak memory from 1,000 to 1,000,000 cards.

For each card count the bundled ``bulk-file`` scenario (file-based issuance, 10 operations a
body) is scaled to that many cards and, each step in a fresh process whose peak RSS is read
from ``wait4``:

- expansion: the scenario expanded and each body written to a JSON Lines capture as it streams
  by, the way a capture of D1's traffic would be recorded (time, peak RSS);
- validate: ``d1sim validate`` on the capture of every planned body, one per line;
- delivery: ``d1sim replay`` of the scaled scenario to nginx answering 204, ``--concurrency 8``,
  end to end with its durable outbox. Above ``--deliver-up-to`` cards delivery is not run: its
  time is extrapolated linearly from the largest measured run and marked as such.

Every capture is written first; then validate runs ``--repeat`` rounds, each over every card
count, so that all sizes are measured at the same moments of a shared machine; the figures are
medians (``validate_s``, ``validate_cpu_s`` with its workers, ``validate_rss_mb``, and the
single runs in ``validate_runs``). With ``--baseline REV`` each validate also runs with the
code of that git revision, beside it, which goes first alternating from round to round
(``validate_before_*``). ``--captures DIR`` keeps the captures there and reuses them (a reused
capture's expansion is not measured again).

Figures go to ``docs/scaling.json`` and the log-log plot ``docs/scaling.png``.

Usage::

    python benchmarks/scaling_bench.py                                   # 1k..1M, deliver up to 100k
    python benchmarks/scaling_bench.py --cards 1000 10000 --deliver-up-to 10000 --no-plot
    python benchmarks/scaling_bench.py --extend docs/scaling.json --deliver-up-to 0   # validate again
    python benchmarks/scaling_bench.py --deliver-up-to 0 --baseline HEAD~5 --no-plot --json out.json
    python benchmarks/scaling_bench.py --cards 100000 300000 1000000 --deliver-up-to 0 --repeat 3 \
        --baseline main --captures benchmarks/out --no-plot       # per-operation cost, side by side
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from anchor import WEBHOOK, Nginx, missing_tools
from planning_bench import export

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCENARIO = "bulk-file"
CARDS = (1_000, 10_000, 100_000, 1_000_000)
_EXPAND = """
import sys, time
from d1sim.contracts.scenario.expansion import planned_deliveries
from d1sim.contracts.scenario.limits import ScenarioLimits
from d1sim.contracts.scenario.loading import load_scenario_file
# 1,000,000 cards are 5,000,000 notifications: over a run's default limit, the point here.
scenario = load_scenario_file(sys.argv[1], ScenarioLimits(max_notifications=10**8))
began = time.perf_counter()
deliveries = 0
with open(sys.argv[2], "wb") as out:
    for delivery in planned_deliveries(scenario):
        deliveries += 1
        out.write(delivery.body + b"\\n")
print(deliveries, time.perf_counter() - began)
"""


def scaled(cards: int, folder: Path) -> Path:
    """The bundled scenario with ``cards`` cards, as a file ``d1sim replay`` accepts."""
    data = yaml.safe_load((ROOT / "scenarios" / f"{SCENARIO}.yaml").read_text())
    data["cards"]["count"] = cards
    data["name"] = f"{SCENARIO}-{cards}"
    path = folder / f"{SCENARIO}-{cards}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def timed(command: list[str], tree: Path | None = None,
          ok: tuple[int, ...] = (0, 1)) -> tuple[float, float, float, str]:
    """Run ``command`` (with the code in ``tree``, when given); its wall seconds, its peak RSS
    in MB (wait4), its CPU seconds (its children's included) and its stdout. An exit code not
    in ``ok`` ends the benchmark."""
    # -m puts the working directory first on sys.path: the tree's d1sim, not the installed one.
    env = {**os.environ, "PYTHONPATH": str(tree)} if tree else None
    with tempfile.TemporaryFile() as out:
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, cwd=tree, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)
        error = child.stderr.read().decode() if child.stderr else ""
        if child.returncode not in ok:
            raise SystemExit(f"{' '.join(command[:5])}... failed ({child.returncode}): {error[-1500:]}")
        out.seek(0)
        return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, out.read().decode()


def capture(cards: int, folder: Path, captures: Path | None) -> tuple[Path, dict[str, Any]]:
    """The capture of ``cards`` cards, and its expansion figures (none when reused from ``captures``)."""
    path = (captures or folder) / f"capture-{cards}.jsonl"
    figures: dict[str, Any] = {"cards": cards}
    if captures is not None and path.exists():
        with path.open("rb") as lines:
            figures["deliveries"] = sum(1 for _ in lines)
        print(f"{cards:,} cards: reusing {path}", file=sys.stderr, flush=True)
        return path, figures
    partial = path.with_suffix(".partial")
    _, expand_rss, _, out = timed([sys.executable, "-c", _EXPAND, str(scaled(cards, folder)), str(partial)], ok=(0,))
    partial.rename(path)
    deliveries, expand_seconds = out.split()
    print(f"{cards:,} cards expanded in {float(expand_seconds):.1f} s", file=sys.stderr, flush=True)
    return path, figures | {"deliveries": int(deliveries), "expand_s": float(expand_seconds),
                            "expand_rss_mb": expand_rss}


Run = tuple[float, float, float]  # wall seconds, peak RSS MB, CPU seconds


def validate_rounds(captures: dict[int, Path], repeat: int, baseline: Path | None) -> dict[int, dict[str, Any]]:
    """``repeat`` rounds of ``d1sim validate`` over every capture (the baseline's code beside,
    first every other round); the medians of each card count."""
    runs: dict[tuple[int, str], list[Run]] = {}
    for round_ in range(repeat):
        for cards, path in captures.items():
            sides = [("", ROOT)] + ([("before_", baseline)] if baseline is not None else [])
            for side, tree in sides[::-1] if round_ % 2 else sides:
                seconds, rss, cpu, _ = timed([sys.executable, "-m", "d1sim", "validate", "--quiet", str(path)], tree)
                runs.setdefault((cards, side), []).append((seconds, rss, cpu))
                print(f"round {round_ + 1}: {cards:,} cards validated{' (baseline)' if side else ''} in "
                      f"{seconds:.1f} s, {cpu:.1f} s CPU, {rss:.0f} MB", file=sys.stderr, flush=True)
    figures: dict[int, dict[str, Any]] = {cards: {} for cards in captures}
    for (cards, side), measured in runs.items():
        figures[cards] |= {
            f"validate_{side}s": statistics.median(s for s, _, _ in measured),
            f"validate_{side}rss_mb": statistics.median(r for _, r, _ in measured),
            f"validate_{side}cpu_s": statistics.median(c for _, _, c in measured),
            f"validate_{side}runs": [round(s, 2) for s, _, _ in measured]}
    return figures


def deliver_to(cards: int, folder: Path, nginx: Nginx) -> dict[str, Any]:
    """``d1sim replay`` of ``cards`` cards to nginx: time and peak RSS."""
    db = folder / f"outbox-{cards}.db"
    seconds, rss, _, _ = timed([sys.executable, "-m", "d1sim", "replay", str(scaled(cards, folder)),
                                "--concurrency", "8", "--target", nginx.url + WEBHOOK, "--db", str(db),
                                "--no-progress"])
    for leftover in folder.glob(f"outbox-{cards}.db*"):
        leftover.unlink()
    return {"deliver_s": seconds, "deliver_rss_mb": rss, "deliver_extrapolated": False}


def merge(earlier: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier figures, each card count's fields overridden by fresh ones, sorted by cards."""
    by_cards = {p["cards"]: dict(p) for p in earlier}
    for p in fresh:
        by_cards.setdefault(p["cards"], {}).update(p)
    return [by_cards[c] for c in sorted(by_cards)]


def extrapolate(points: list[dict[str, Any]]) -> None:
    """Delivery seconds of unmeasured counts, linear in deliveries from the largest measured run."""
    measured = [p for p in points if "deliver_s" in p and not p.get("deliver_extrapolated")]
    if not measured:
        return
    base = max(measured, key=lambda p: p["cards"])
    per_delivery = float(base["deliver_s"]) / float(base["deliveries"])
    for p in points:
        if "deliver_s" not in p or p.get("deliver_extrapolated"):
            p |= {"deliver_s": per_delivery * float(p["deliveries"]), "deliver_extrapolated": True}


def plot(points: list[dict[str, Any]], path: Path) -> None:
    """Time and peak RSS against cards, log-log, one line per measure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cards = [p["cards"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in (("expand_s", "expansion"), ("validate_s", "validate"), ("deliver_s", "delivery to nginx")):
        shown = [p for p in points if key in p]
        left.plot([p["cards"] for p in shown], [p[key] for p in shown], marker="o", label=label)
    guessed = [p for p in points if p.get("deliver_extrapolated")]
    if guessed:
        left.plot([p["cards"] for p in guessed], [p["deliver_s"] for p in guessed], "x", color="black",
                  markersize=10, label="delivery, extrapolated")
    lo, hi = min(cards), max(cards)
    ref = points[0]["expand_s"]
    left.plot([lo, hi], [ref, ref * hi / lo], ":", color="grey", label="linear")
    for key, label in (("expand_rss_mb", "expansion"), ("validate_rss_mb", "validate"),
                       ("deliver_rss_mb", "delivery")):
        shown = [p for p in points if key in p]
        right.plot([p["cards"] for p in shown], [p[key] for p in shown], marker="o", label=label)
    for axis, title, unit in ((left, "time", "seconds"), (right, "peak memory (RSS)", "MB")):
        axis.set(xscale="log", yscale="log", xlabel="cards", ylabel=unit, title=title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    right.set_ylim(10, 1000)
    fig.suptitle(f"d1sim cost curves, {SCENARIO} scaled (10 operations per body)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, nargs="+", default=list(CARDS))
    parser.add_argument("--deliver-up-to", type=int, default=100_000, metavar="N",
                        help="deliver only up to N cards; extrapolate above (default: %(default)s)")
    parser.add_argument("--no-plot", action="store_true", help="print figures, write no files")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--extend", type=Path, metavar="JSON",
                        help="start from these figures (e.g. docs/scaling.json): a long run in pieces")
    parser.add_argument("--baseline", metavar="REV", help="also validate with the code of this git revision")
    parser.add_argument("--repeat", type=int, default=1, help="validate runs per card count (medians)")
    parser.add_argument("--captures", type=Path, metavar="DIR", help="keep the captures here, and reuse them")
    args = parser.parse_args(argv)
    deliver = not missing_tools() and any(cards <= args.deliver_up_to for cards in args.cards)
    if not deliver and missing_tools():
        print("nginx or wrk missing (benchmarks/setup.sh): delivery is not measured", file=sys.stderr)
    receiver = Nginx() if deliver else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="d1sim-scaling-") as folder, receiver as nginx:
        baseline = None
        if args.baseline:
            (Path(folder) / "baseline").mkdir()
            baseline = export(args.baseline, Path(folder) / "baseline")
        kept = args.captures.resolve() if args.captures else None
        if kept:
            kept.mkdir(parents=True, exist_ok=True)
        made = {cards: capture(cards, Path(folder), kept) for cards in sorted(args.cards)}
        validated = validate_rounds({cards: path for cards, (path, _) in made.items()}, args.repeat, baseline)
        points = [made[cards][1] | validated[cards] for cards in made]
        for p in points:
            if deliver and p["cards"] <= args.deliver_up_to:
                p |= deliver_to(p["cards"], Path(folder), nginx)
            print(json.dumps(p), flush=True)
    if args.extend:
        points = merge(json.loads(args.extend.read_text()), points)
    extrapolate(points)
    if args.json:
        args.json.write_text(json.dumps(points))
    if not args.no_plot:
        (DOCS / "scaling.json").write_text(json.dumps(points, indent=1) + "\n")
        plot(points, DOCS / "scaling.png")
        print(f"wrote {DOCS / 'scaling.json'} and {DOCS / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
