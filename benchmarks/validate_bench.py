"""How fast ``d1sim validate`` streams a large capture, against what parsing alone allows.

Generates (once, deterministically) a JSON Lines capture of realistic PRODUCE notifications:
full lifecycles of many cards from :class:`d1sim.contracts.payloads.factory.PayloadFactory` templates with fresh
ids, shipment updates, failures and cancellations, shuffled in blocks (arrival order is not
guaranteed), 1% duplicates and some bulk lines. Then measures, each a few times (medians):

- end to end: the ``d1sim validate`` console script as a subprocess, with its default jobs
  (one process per CPU for a capture this size) and with ``--jobs 1``;
- memory, in one more run: the peak RSS of the largest process (``wait4``: the main process and
  the workers it waited for), and the peak of the RSS and of the PSS summed over all processes
  (sampled every 0.1 s from ``/proc``; PSS counts the pages workers share with it once);
- the ceiling: a loop that only reads the lines and parses them with orjson;
- schema validation alone on pre-parsed documents: d1sim's validator (jsonschema_rs fast path),
  ``jsonschema.validate`` per call (small sample) and a reused ``Draft202012Validator``;
- the lifecycle checks alone (``SequenceChecker``) on the operations of the same documents, and
  the two halves ``d1sim validate --jobs N`` splits the work into: the per-line half (parse,
  schema, per-operation checks: what workers do) and the cross-line half (lifecycle state).

Targets: end to end >= 40% of the ceiling, peak memory < 200 MB, both for the largest process
and summed (PSS) over all of them (``--enforce`` makes a miss exit 1). The capture is cached in
``benchmarks/out/`` (gitignored) by size and seed.

``--baseline REV`` measures only end to end, before and after side by side: the code of a git
revision (exported to a temporary folder) and the working tree, each ``python -m d1sim validate``
in a fresh process, alternating, with default jobs and ``--jobs 1``; medians of time and of the
largest process's peak RSS, and the ratio of throughputs.

Usage::

    python benchmarks/validate_bench.py                  # 1,000,000 operations
    python benchmarks/validate_bench.py --operations 20000 --repeat 1   # quick check
    python benchmarks/validate_bench.py --baseline HEAD~3 --repeat 5    # before vs after
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import orjson
from planning_bench import export  # benchmarks/, next to this script
from process_memory import sample_memory
from referencing import Registry, Resource

from d1sim.contracts.lifecycle.sequence import SequenceChecker
from d1sim.contracts.notification.documents import NOTIFICATION_SCHEMA_ID, schema_documents
from d1sim.contracts.notification.validation import notification_validator
from d1sim.contracts.payloads.factory import PayloadFactory
from d1sim.simulator.validate.chunks import Chunk, check_chunk
from d1sim.simulator.validate.pipeline import available_cpus, plan_chunks
from d1sim.simulator.validate.reader import expand_inputs

OUT = Path(__file__).parent / "out"
ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = 400
BLOCK = 2000  # cards whose operations are shuffled together
TARGET_RATIO, TARGET_RSS_MB = 0.40, 200


def template_paths(factory: PayloadFactory) -> list[tuple[list[str], int]]:
    """Lifecycle shapes and their weights: mostly shipped, some failed or cancelled on the way."""
    main = list(factory.model.main_path)
    shapes = [(main, 60)]
    shapes += [(main[:i] + ["DATA_EXCEPTION"], 10) for i in (1, 2)]
    shapes += [(main[:i] + ["CARD_PROD_CANCELED"], 5) for i in range(1, len(main) - 1)]
    return shapes


def build_templates(seed: int) -> list[list[dict[str, Any]]]:
    """A few hundred complete lifecycles; the capture reuses them with fresh ids."""
    factory = PayloadFactory(seed=seed)
    rng = random.Random(seed)
    shapes = template_paths(factory)
    chosen = rng.choices([s for s, _ in shapes], [w for _, w in shapes], k=TEMPLATES)
    return [factory.lifecycle(path, shipment_updates=rng.randint(0, 4)) for path in chosen]


def card_operations(template: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """One card's lifecycle: the template's operations with a new operationId and cardId."""
    op_id = str(uuid.UUID(int=rng.getrandbits(128)))
    card_id = "-".join(f"{rng.getrandbits(16):04x}" for _ in range(4))
    return [{**op, "operationId": op_id, "cardId": card_id} for op in template]


def capture_lines(operations: int, seed: int) -> Iterator[bytes]:
    """Yield JSON lines, whole blocks of cards at a time, until ``operations`` are written."""
    templates, rng, written = build_templates(seed), random.Random(seed), 0
    cards = max(10, min(BLOCK, operations // 100))
    while written < operations:
        block = [op for _ in range(cards) for op in card_operations(rng.choice(templates), rng)]
        block += rng.sample(block, len(block) // 100)  # at-least-once delivery: duplicates
        rng.shuffle(block)
        written += len(block)
        start = 0
        while start < len(block):
            size = rng.choice((2, 3, 4)) if rng.random() < 0.05 else 1  # some bulk notifications
            yield orjson.dumps({"operations": block[start : start + size]}) + b"\n"
            start += size


def ensure_capture(operations: int, seed: int) -> Path:
    """Write the capture for (operations, seed) unless it is already there."""
    path = OUT / f"capture-{operations}-{seed}.jsonl"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with partial.open("wb") as out:
            out.writelines(capture_lines(operations, seed))
        partial.rename(path)
    return path


Memory = tuple[float, float, float]  # peak MB: largest process, RSS summed, PSS summed


def run_end_to_end(
    path: Path, jobs: str | None = None, sample: bool = False, tree: Path | None = None
) -> tuple[float, Memory, float]:
    """One subprocess run of ``d1sim validate``: seconds, memory (sums only if ``sample``) and
    CPU seconds (user + system, its workers included: they are waited for).

    ``tree``: run the code of that folder (``python -m d1sim`` there) instead of the installed one.
    """
    script = Path(sys.executable).with_name("d1sim")
    command = [str(script)] if script.exists() and tree is None else [sys.executable, "-m", "d1sim"]
    options = ["--jobs", jobs] if jobs else []
    # -m puts the working directory first on sys.path: the tree's d1sim, not the installed one.
    env = {**os.environ, "PYTHONPATH": str(tree)} if tree else None
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "validate", *options, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        cwd=tree, env=env,
    )
    sums = sample_memory(process) if sample else (0.0, 0.0)
    stderr = process.stderr.read() if process.stderr else b""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"d1sim validate exited {process.returncode}: {stderr.decode()[-500:]}")
    return elapsed, (usage.ru_maxrss / 1024, *sums), usage.ru_utime + usage.ru_stime


def run_ceiling(path: Path) -> float:
    """Seconds to read and parse every line with orjson, nothing else."""
    loads = orjson.loads
    started = time.perf_counter()
    with path.open("rb") as stream:
        for line in stream:
            loads(line)
    return time.perf_counter() - started


def timed(check: Callable[[Any], Any], documents: Sequence[Any]) -> float:
    """Seconds to run ``check`` over ``documents``."""
    started = time.perf_counter()
    for document in documents:
        check(document)
    return time.perf_counter() - started


def reference_registry() -> Registry[Any]:
    docs = schema_documents()
    return Registry().with_resources((uri, Resource.from_contents(d)) for uri, d in docs.items())


def schema_checks(registry: Registry[Any]) -> list[tuple[str, Callable[[Any], Any], int]]:
    """(label, check, sample size): ours, naive per-call jsonschema, reused jsonschema."""
    schema = schema_documents()[NOTIFICATION_SCHEMA_ID]
    reused = jsonschema.Draft202012Validator(schema, registry=registry)
    ours = notification_validator()
    return [
        ("schema: d1sim validator (jsonschema_rs fast path)", ours.validate, 50_000),
        ("schema: jsonschema Draft202012Validator, reused", reused.validate, 5_000),
        (
            "schema: jsonschema.validate per call (extrapolated)",
            lambda d: jsonschema.validate(d, schema, registry=registry),
            300,
        ),
    ]


def run_lifecycle(documents: Sequence[Any]) -> float:
    """Seconds for the cross-input lifecycle checks alone (SequenceChecker add + finish)."""
    checker = SequenceChecker()
    started = time.perf_counter()
    for line, document in enumerate(documents, 1):
        for i, operation in enumerate(document["operations"]):
            checker.add(operation, line, f"/operations/{i}")
    for _ in checker.finish():
        pass
    return time.perf_counter() - started


def median_runs(measure: Callable[[], float], repeat: int) -> float:
    return statistics.median(measure() for _ in range(repeat))


def first_documents(path: Path, count: int) -> list[Any]:
    with path.open("rb") as stream:
        return [orjson.loads(line) for line, _ in zip(stream, range(count), strict=False)]


def count_operations(path: Path) -> tuple[int, int]:
    lines = operations = 0
    with path.open("rb") as stream:
        for line in stream:
            lines += 1
            operations += line.count(b'"operationId"')
    return lines, operations


Row = tuple[str, str, float]  # (measurement, sample, operations per second)


def measure_stream(path: Path, operations: int, repeat: int) -> tuple[list[Row], float, Memory]:
    """End to end and ceiling rows, the ratio between them, and the peak memory in MB."""
    sample = f"{operations:,} ops"
    end_to_end = operations / median_runs(lambda: run_end_to_end(path)[0], repeat)
    one = operations / median_runs(lambda: run_end_to_end(path, "1")[0], repeat)
    ceiling = operations / median_runs(lambda: run_ceiling(path), repeat)
    rows = [
        (f"end to end: d1sim validate (subprocess, {available_cpus()} CPUs)", sample, end_to_end),
        ("end to end: d1sim validate --jobs 1 (subprocess)", sample, one),
        ("ceiling: read + orjson.loads per line", sample, ceiling),
    ]
    return rows, end_to_end / ceiling, run_end_to_end(path, sample=True)[1]


def measure_parts(path: Path, repeat: int) -> list[Row]:
    """Schema validation alone (three ways) and lifecycle checks alone, on parsed documents."""
    docs, rows = first_documents(path, 50_000), []
    for label, check, sample in schema_checks(reference_registry()):
        part = docs[:sample]
        seconds = median_runs(lambda c=check, d=part: timed(c, d), repeat)
        rows.append((label, f"{len(part):,} docs", count_ops(part) / seconds))
    sample = f"{count_ops(docs):,} ops"
    seconds = median_runs(lambda: run_lifecycle(docs), repeat)
    rows.append(("lifecycle: SequenceChecker add + finish", sample, count_ops(docs) / seconds))
    chunks = first_chunks(path, len(docs))
    line_half, state_half = halves(chunks, repeat)
    rows.append(("--jobs: per-line half (parse, schema, examine)", sample, count_ops(docs) / line_half))
    rows.append(("--jobs: cross-line half (record + finish)", sample, count_ops(docs) / state_half))
    return rows


def first_chunks(path: Path, lines: int) -> list[Chunk]:
    """The chunks ``d1sim validate`` would cut from the first ``lines`` lines of ``path``."""
    chunks = plan_chunks(expand_inputs([str(path)]), size=1 << 20)
    with path.open("rb") as stream:
        end = sum(len(line) for line, _ in zip(stream, range(lines), strict=False))
    return [chunk for chunk in chunks if chunk.start < end]


def halves(chunks: list[Chunk], repeat: int) -> tuple[float, float]:
    """Seconds for the per-line half of ``chunks``, and for the cross-line half of them."""
    results = [check_chunk(chunk) for chunk in chunks]
    line_half = median_runs(lambda: timed(check_chunk, chunks), repeat)

    def cross_line() -> float:
        checker = SequenceChecker()
        started = time.perf_counter()
        for result in results:
            list(map(checker.record, result.examined()))
        list(checker.finish())
        return time.perf_counter() - started

    return line_half, median_runs(cross_line, repeat)


def count_ops(documents: Sequence[Any]) -> int:
    return sum(len(document["operations"]) for document in documents)


def compare(path: Path, operations: int, baseline: Path, repeat: int) -> dict[str, Any]:
    """End to end, the code in ``baseline`` and this tree alternating: medians and ratios."""
    runs: dict[tuple[str, str], list[tuple[float, Memory, float]]] = {}
    for _ in range(repeat):
        for jobs in ("default", "1"):
            for side, tree in (("before", baseline), ("after", ROOT)):
                figures = run_end_to_end(path, None if jobs == "default" else jobs, tree=tree)
                runs.setdefault((side, jobs), []).append(figures)
    result: dict[str, Any] = {"operations": operations, "repeat": repeat}
    for (side, jobs), figures in runs.items():
        seconds = statistics.median(s for s, _, _ in figures)
        result[f"{side}_{jobs}"] = {"seconds": seconds, "per_s": operations / seconds,
                                    "runs": [round(s, 2) for s, _, _ in figures],
                                    "cpu_s": statistics.median(c for _, _, c in figures),
                                    "largest_rss_mb": statistics.median(m[0] for _, m, _ in figures)}
    for jobs in ("default", "1"):
        before, after = result[f"before_{jobs}"], result[f"after_{jobs}"]
        result[f"ratio_{jobs}"] = after["per_s"] / before["per_s"]
        result[f"cpu_ratio_{jobs}"] = after["cpu_s"] / before["cpu_s"]
    return result


def print_comparison(result: dict[str, Any], baseline: str) -> None:
    print(f"| jobs | before ({baseline}) | after | throughput after / before | CPU s before / after "
          "| peak RSS before / after |")
    print("|---|---:|---:|---:|---:|---:|")
    for jobs in ("default", "1"):
        before, after = result[f"before_{jobs}"], result[f"after_{jobs}"]
        print(f"| {jobs} | {before['per_s']:,.0f} ops/s ({before['seconds']:.2f} s) | "
              f"{after['per_s']:,.0f} ops/s ({after['seconds']:.2f} s) | {result[f'ratio_{jobs}']:.3f} | "
              f"{before['cpu_s']:.2f} / {after['cpu_s']:.2f} | "
              f"{before['largest_rss_mb']:.0f} / {after['largest_rss_mb']:.0f} MB |")
    for jobs in ("default", "1"):
        before, after = result[f"before_{jobs}"], result[f"after_{jobs}"]
        print(f"runs (s), jobs {jobs}: before {before['runs']}, after {after['runs']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the capture, measure, print the table (exit 1 on a missed target if enforced)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=1_000_000, help="capture size")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--enforce", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, help="also write the headline figures to this file")
    parser.add_argument("--baseline", metavar="REV", help="end to end only: this git revision beside the tree")
    args = parser.parse_args(argv)
    path = ensure_capture(args.operations, args.seed)
    lines, operations = count_operations(path)
    load = os.getloadavg()[0]
    if args.baseline:
        with tempfile.TemporaryDirectory(prefix="d1sim-baseline-") as folder:
            result = compare(path, operations, export(args.baseline, Path(folder)), args.repeat)
        print(f"validate end to end, {operations:,} operations in {lines:,} lines, medians of {args.repeat} "
              f"alternating runs; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
        print_comparison(result, args.baseline)
        if args.json:
            args.json.write_text(json.dumps({"baseline": args.baseline, **result}))
        return 0
    rows, ratio, (largest, rss_sum, pss_sum) = measure_stream(path, operations, args.repeat)
    rows += measure_parts(path, args.repeat)
    print(
        f"validate benchmark: {operations:,} operations in {lines:,} lines (seed {args.seed}), "
        f"{available_cpus()} CPUs, load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, "
        f"medians of {args.repeat} runs"
    )
    print_table(rows)
    print(f"end to end / ceiling: {ratio:.0%} (target >= {TARGET_RATIO:.0%})")
    print(
        f"peak memory: largest process {largest:.0f} MB RSS; all processes {pss_sum:.0f} MB PSS, "
        f"{rss_sum:.0f} MB RSS counting shared pages in each (target < {TARGET_RSS_MB} MB)"
    )
    met = ratio >= TARGET_RATIO and max(largest, pss_sum) < TARGET_RSS_MB
    if args.json:
        args.json.write_bytes(orjson.dumps({
            "operations": operations, "ratio": ratio, "end_to_end_per_s": rows[0][2],
            "ceiling_per_s": rows[2][2], "largest_rss_mb": largest, "pss_mb": pss_sum}))
    return 1 if args.enforce and not met else 0


def print_table(rows: list[Row]) -> None:
    """A Markdown table, ready to paste into BENCHMARKS.md."""
    print(f"| {'measurement':<52} | {'sample':>14} | {'operations/s':>13} |")
    print(f"|{'-' * 54}|{'-' * 15}:|{'-' * 14}:|")
    for label, sample, rate in rows:
        print(f"| {label:<52} | {sample:>14} | {rate:>13,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
