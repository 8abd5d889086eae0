"""Reports shared by `replay` and `check`: outcomes as values, written as JSON or JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from d1sim.simulator.errors import UsageError

Outcome = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One verdict: an expectation of a scenario, a card's end state, or a receiver check."""

    suite: str
    name: str
    outcome: Outcome
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", {}, None)}


def tally(cases: Iterable[CaseResult]) -> Counter[str]:
    """Count outcomes: ``{"passed": n, "failed": n, "skipped": n}``."""
    counts: Counter[str] = Counter({"passed": 0, "failed": 0, "skipped": 0})
    counts.update(case.outcome for case in cases)
    return counts


def write_json(path: str | Path, document: Mapping[str, Any]) -> None:
    """Write a JSON report, creating the folder; a bad path is a usage error."""
    _write(path, json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def junit_xml(cases: Iterable[CaseResult], name: str = "d1sim") -> str:
    """JUnit XML with one <testsuite> per suite and one <testcase> per verdict."""
    suites: dict[str, list[CaseResult]] = {}
    for case in cases:
        suites.setdefault(case.suite, []).append(case)
    root = ET.Element("testsuites", name=name)
    for suite_name, members in suites.items():
        counts = tally(members)
        suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(members)),
                              failures=str(counts["failed"]), skipped=str(counts["skipped"]), errors="0",
                              time=f"{sum(c.seconds for c in members):.3f}")
        for case in members:
            _add_case(suite, case)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _add_case(suite: ET.Element, case: CaseResult) -> None:
    element = ET.SubElement(suite, "testcase", classname=case.suite, name=case.name, time=f"{case.seconds:.3f}")
    if case.outcome == "failed":
        failure = ET.SubElement(element, "failure", message=case.reason[:500])
        failure.text = case.reason + ("\n" + json.dumps(case.details, indent=2, default=str) if case.details else "")
    elif case.outcome == "skipped":
        ET.SubElement(element, "skipped", message=case.reason[:500])


def write_junit(path: str | Path, cases: Iterable[CaseResult], name: str = "d1sim") -> None:
    """Write JUnit XML that CI systems read."""
    _write(path, junit_xml(cases, name))


def _write(path: str | Path, text: str) -> None:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write report {target}: {exc.strerror or exc}") from None
