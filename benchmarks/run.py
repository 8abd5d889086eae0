"""Kept for old habits: ``python benchmarks/run.py ARGS`` is ``python -m benchmarks ARGS``."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    runpy.run_module("benchmarks", run_name="__main__")
