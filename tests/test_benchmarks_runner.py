"""``python -m benchmarks``: its options, its report rewriting and one real (tiny) benchmark run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_runner", ROOT / "benchmarks" / "__main__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_list_names_every_benchmark_script() -> None:
    done = run_module("--list")
    assert done.returncode == 0
    listed = {line.split()[0] for line in done.stdout.splitlines()}
    assert listed == {p.stem.removesuffix("_bench") for p in (ROOT / "benchmarks").glob("*_bench.py")}


def test_an_unknown_benchmark_is_a_usage_error() -> None:
    done = run_module("sendng")
    assert done.returncode == 2
    assert "unknown benchmark sendng; choose from sending" in done.stderr


def test_rewrite_replaces_only_the_marked_block() -> None:
    bench = runner()
    report = f"# Benchmarks\nintro\n{bench.BEGIN}\nold table\n{bench.END}\n## Details\nkept\n"
    new = bench.rewrite(report, "new table")
    assert new == f"# Benchmarks\nintro\n{bench.BEGIN}\nnew table\n{bench.END}\n## Details\nkept\n"
    with pytest.raises(ValueError, match="no <!-- benchmarks:begin -->"):
        bench.rewrite("# no markers\n", "table")


def test_the_project_report_has_the_block_the_runner_rewrites() -> None:
    bench = runner()
    report = (ROOT / "BENCHMARKS.md").read_text()
    assert bench.rewrite(report, "x").count(bench.BEGIN) == 1


def test_a_tiny_expansion_benchmark_runs_and_its_figures_become_a_row() -> None:
    bench = runner()
    tiny = bench.Bench("expansion", (), ("--cards", "20", "--scenario", "happy-path"), bench._expansion)
    rows, problem = bench.run(tiny, quick=True)
    assert problem is None
    [(what, peak, _, _)] = rows
    assert what.startswith("expanding 20 cards (happy-path)")
    assert peak.endswith(" MB") and float(peak.split()[0]) > 0
