"""d1sim installs one top-level name, so it lives beside an integrator's own generic modules.

A wheel is built from this checkout and installed (without its dependencies, which this
environment already has) into a folder beside a throw-away project that owns ``schemas.py``,
``contracts/`` and ``simulator.py``. The project's tests then use the pytest plugin and the Python
API; both must see the project's modules under their own names and d1sim's under ``d1sim.``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

INTEGRATOR_TESTS = '''
import schemas, simulator, contracts
from d1sim.contracts.lifecycle.convergence import converge
import d1sim


def test_own_modules_keep_their_names():
    assert schemas.ORDER_SCHEMA == "mine"
    assert simulator.NAME == "integrator simulator"
    assert contracts.OWNER == "integrator"


def test_d1sim_comes_from_the_wheel():
    assert d1sim.__file__.startswith({site!r})


def test_python_api_converges():
    ops = [
        {{"operationId": "op1", "cardId": "c1", "operation": "PRODUCE", "status": "PENDING",
          "startTime": "2025-01-17T06:28:02.492Z", "details": {{"status": status}}}}
        for status in ("DATA_PREPARED", "CARD_PROD_REQUESTED")
    ]
    assert converge(ops)["c1"].status == "DATA_PREPARED"


def test_plugin_checks_a_wsgi_app(d1sim_check):
    from flask import Flask, request

    app = Flask("integrator")

    @app.post("/notifications/d1/v2/issuers/<issuer>/cards")
    def notify(issuer):
        if request.get_json(silent=True) is None:
            return "not JSON", 400
        return "", 204

    outcomes = d1sim_check(app, checks=["rejects_malformed_json"], max_examples=3)
    assert [(o.check_id, o.outcome) for o in outcomes] == [("rejects_malformed_json", "passed")]
'''


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("d1sim-*.whl")
    return built


def test_the_wheel_holds_one_top_level_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"d1sim"}
    for room in ("contracts", "simulator", "schemas", "scenarios"):
        assert f"d1sim/{room}/__init__.py" in names
    assert "d1sim/schemas/produce-lifecycle.json" in names
    assert "d1sim/scenarios/happy-path.yaml" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "d1sim = d1sim.simulator.cli:main" in text
    assert "d1sim = d1sim.simulator.check.plugin" in text


@pytest.mark.slow
def test_plugin_and_api_work_beside_an_integrators_generic_modules(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    project = tmp_path / "project"
    (project / "contracts").mkdir(parents=True)
    (project / "contracts" / "__init__.py").write_text('OWNER = "integrator"\n')
    (project / "schemas.py").write_text('ORDER_SCHEMA = "mine"\n')
    (project / "simulator.py").write_text('NAME = "integrator simulator"\n')
    (project / "test_integration.py").write_text(INTEGRATOR_TESTS.format(site=str(site)))
    # The project first, then the wheel's folder, then this environment's dependencies; the
    # editable d1sim of this checkout stays behind them (its finder comes after the path).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), str(site)])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project / "test_integration.py")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
