"""Run every ``benchmarks/*_bench.py`` in turn; arguments after ``--`` go to each of them.

Usage::

    python benchmarks/run.py                      # every benchmark, full size
    python benchmarks/run.py validate             # only validate_bench.py
    python benchmarks/run.py validate -- --operations 20000 --repeat 1   # a quick pass
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).parent


def benchmarks(names: Sequence[str]) -> list[Path]:
    """The benchmark scripts, sorted; only those named when ``names`` is not empty."""
    found = sorted(HERE.glob("*_bench.py"))
    return [p for p in found if not names or p.stem.removesuffix("_bench") in names]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks one after the other; exit 1 when any of them failed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    names, extra = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    scripts = benchmarks(names)
    if not scripts:
        print(f"no benchmark named {', '.join(names)}", file=sys.stderr)
        return 2
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script), *extra], check=False).returncode:
            failed.append(script.name)
    if failed:
        print(f"failed or missed a target: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
