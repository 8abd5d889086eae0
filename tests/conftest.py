"""Shared test set-up: hypothesis profiles and the one loader for domain test data."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

DATA = Path(__file__).parent / "data"

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def load_data(relative: str) -> Any:
    """Parse a JSON file under tests/data/."""
    return json.loads((DATA / relative).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of domain test data (seed examples, known-bad payloads)."""
    return DATA


@pytest.fixture(scope="session")
def seed_examples() -> dict[str, Any]:
    """Every JSON example of the vendor page, by file stem."""
    return {p.stem: load_data(f"seed/{p.name}") for p in sorted((DATA / "seed").glob("*.json"))}
