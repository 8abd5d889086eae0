"""Examples per second of ``d1sim.contracts.strategies.notifications()`` beside hypothesis-jsonschema.

Both strategies target the same document, the default (forward-compatible) notification schema:
ours is built from the lifecycle model and the vocabulary, hypothesis-jsonschema's ``from_schema``
gets that schema with every ``$ref`` inlined (it does not resolve remote refs). In one process,
alternating, each draws ``--examples`` examples through a hypothesis ``@given`` loop (generate
phase only, no database, no health checks), ``--repeat`` times, after a 10-example warm-up; the
rates are examples per CPU second of the process (robust on a shared machine), medians. Every
drawn example is then checked with ``d1sim.contracts.notification.validation`` (default and strict profiles) and
``d1sim.contracts.lifecycle.sequence.check_sequence`` (a legal lifecycle per operationId), outside the timing.

hypothesis-jsonschema is not a d1sim dependency. When it cannot be imported here, the script
re-executes itself with ``$D1SIM_HJS_PYTHON`` or ``/tmp/hjs-venv/bin/python``; the recipe for that
environment is ``benchmarks/requirements-hypothesis-jsonschema.txt``.

Usage::

    .venv/bin/python benchmarks/strategies_bench.py                      # 2,000 examples, 3 runs
    .venv/bin/python benchmarks/strategies_bench.py --examples 200 --repeat 1   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.strategies import SearchStrategy
from referencing import Registry, Resource

from d1sim.contracts.lifecycle.sequence import check_sequence
from d1sim.contracts.notification.documents import NOTIFICATION_SCHEMA_ID, schema_documents
from d1sim.contracts.notification.validation import notification_validator
from d1sim.contracts.strategies import notifications

OUT = Path(__file__).parent / "out"
HJS_PYTHON = os.environ.get("D1SIM_HJS_PYTHON", "/tmp/hjs-venv/bin/python")
TARGET_SPEEDUP, TARGET_VALID = 5.0, 1.0
ANNOTATIONS = {"$id", "$schema", "$defs", "title", "description", "deprecated"}


def inline_refs(schema: Any, resolver: Any) -> Any:
    """``schema`` with every ``$ref`` replaced by its target (our schemas are not recursive)."""
    if isinstance(schema, list):
        return [inline_refs(item, resolver) for item in schema]
    if not isinstance(schema, dict):
        return schema
    here = {
        k: inline_refs(v, resolver) for k, v in schema.items() if k not in ANNOTATIONS | {"$ref"}
    }
    if "$ref" not in schema:
        return here
    target = resolver.lookup(schema["$ref"])
    inlined = inline_refs(target.contents, target.resolver)
    # A 2020-12 $ref applies beside its siblings: merge when disjoint, else keep both (allOf).
    return {**inlined, **here} if not set(inlined) & set(here) else {"allOf": [inlined, here]}


def bundled_notification_schema() -> dict[str, Any]:
    """The default notification schema, self-contained (no ``$ref``, no ``$id``, no ``$schema``)."""
    docs = schema_documents()
    registry: Registry[Any] = Registry().with_resources(
        (uri, Resource.from_contents(doc)) for uri, doc in docs.items()
    )
    return inline_refs(docs[NOTIFICATION_SCHEMA_ID], registry.resolver(NOTIFICATION_SCHEMA_ID))


def draw_examples(strategy: SearchStrategy[Any], count: int) -> tuple[float, list[Any]]:
    """CPU seconds a ``@given`` loop takes to run ``count`` examples, and the examples it drew."""
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def sink(value: Any) -> None:
        drawn.append(value)

    # CPU time of this process: the figure other jobs on a shared machine cannot skew.
    started = time.process_time()
    sink()
    return time.process_time() - started, drawn


def quality(examples: Sequence[Any]) -> dict[str, float]:
    """Shares of schema-valid (default, strict) and lifecycle-legal examples; mean operations."""
    default, strict = notification_validator(False), notification_validator(True)
    valid = [e for e in examples if default.is_valid(e)]
    count = len(examples) or 1
    return {
        "valid": len(valid) / count,
        "valid_strict": sum(strict.is_valid(e) for e in examples) / count,
        "legal_lifecycle": sum(not check_sequence(e["operations"]) for e in valid) / count,
        "mean_operations": statistics.fmean(len(e["operations"]) for e in valid) if valid else 0.0,
    }


def measure(
    strategies: dict[str, SearchStrategy[Any]], count: int, repeat: int
) -> dict[str, dict[str, Any]]:
    """Alternate the strategies ``repeat`` times; keep every run's rate and the first draws."""
    runs: dict[str, list[float]] = {name: [] for name in strategies}
    kept: dict[str, list[Any]] = {}
    for strategy in strategies.values():
        draw_examples(strategy, 10)  # warm up: one-off set-up (hypothesis-jsonschema canonicalises)
    for _ in range(repeat):
        for name, strategy in strategies.items():
            seconds, drawn = draw_examples(strategy, count)
            runs[name].append(len(drawn) / seconds)
            kept.setdefault(name, drawn)
            print(f"  {name}: {len(drawn)} examples in {seconds:.1f} CPU s", file=sys.stderr)
    return {
        name: {
            "examples": len(kept[name]),
            "per_second_runs": runs[name],
            "per_second": statistics.median(runs[name]),
            **quality(kept[name]),
        }
        for name in strategies
    }


def print_table(results: dict[str, dict[str, Any]]) -> None:
    print("| strategy | examples/s (median) | valid | valid, strict | legal lifecycle | ops/body |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['per_second']:,.0f} | {r['valid']:.1%} | {r['valid_strict']:.1%} "
            f"| {r['legal_lifecycle']:.1%} | {r['mean_operations']:.2f} |"
        )


def reexec_in_hjs_venv(argv: Sequence[str]) -> None:
    """Run this script again where hypothesis-jsonschema is installed (never returns)."""
    if os.environ.get("D1SIM_HJS_REEXEC") or not Path(HJS_PYTHON).exists():
        sys.exit(
            "hypothesis-jsonschema is not importable; create the environment described in "
            "benchmarks/requirements-hypothesis-jsonschema.txt or set D1SIM_HJS_PYTHON"
        )
    os.environ["D1SIM_HJS_REEXEC"] = "1"
    os.execv(HJS_PYTHON, [HJS_PYTHON, __file__, *argv])


def main(argv: Sequence[str] | None = None) -> int:
    """Measure both strategies, print the table; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        from hypothesis_jsonschema import from_schema
    except ImportError:
        reexec_in_hjs_venv(sys.argv[1:] if argv is None else argv)
    import hypothesis
    import hypothesis_jsonschema

    contenders: dict[str, Callable[[], SearchStrategy[Any]]] = {
        "d1sim `notifications()`": notifications,
        "hypothesis-jsonschema `from_schema` (bundled schema)": lambda: from_schema(
            bundled_notification_schema()
        ),
    }
    results = measure(
        {name: build() for name, build in contenders.items()}, args.examples, args.repeat
    )
    ours, theirs = results.values()
    speedup = ours["per_second"] / theirs["per_second"]
    print(
        f"{args.examples:,} examples per strategy, median of {args.repeat} alternating runs; "
        f"Python {sys.version.split()[0]}, hypothesis {hypothesis.__version__}, "
        f"hypothesis-jsonschema {hypothesis_jsonschema.__version__}\n"
    )
    print_table(results)
    print(
        f"\nd1sim's strategy is {speedup:.1f}x faster "
        f"(target >= {TARGET_SPEEDUP:.0f}x, 100% valid)."
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "strategies_bench.json").write_text(
        json.dumps({"speedup": speedup, "results": results}, indent=2)
    )
    return 0 if speedup >= TARGET_SPEEDUP and ours["valid"] >= TARGET_VALID else 1


if __name__ == "__main__":
    sys.exit(main())
