"""How check outcomes read: one line per check, a block per failure, and the JSON report.

Shared by ``d1sim check`` and the pytest plugin, so a failure looks the same in a terminal and
in a test report. Bodies are pretty JSON cut at :data:`MAX_BODY_LINES` lines, and at most
:data:`MAX_REQUESTS` requests are shown; the JSON report always has all of them.

Example::

    >>> outcome = CheckOutcome("accepts_batches", "passed", "", examples=25, seconds=0.5)
    >>> print(format_line(outcome))
    passed   accepts_batches              25 examples, 0.50 s
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from d1sim.contracts.checks import CheckFailure, CheckOutcome, Exchange, registered
from d1sim.contracts.checks.model import decode_body
from d1sim.simulator.redaction import strip_userinfo

MAX_BODY_LINES = 40
MAX_REQUESTS = 8
PRETTY_BUDGET = 120  # lines of pretty JSON per failure; later bodies are shown on one line
COMPACT_WIDTH = 240
ID_WIDTH = 28


def format_line(outcome: CheckOutcome) -> str:
    """``passed   <id>  N examples, T s`` / ``skipped  <id>  reason`` / ``failed   <id>  got``."""
    if outcome.outcome == "passed":
        detail = f"{outcome.examples} examples, {outcome.seconds:.2f} s"
        if outcome.settled_within:
            detail += f", state settled within {outcome.settled_within:.2f} s"
    elif outcome.outcome == "failed":
        detail = f"{_one_line(outcome.reason, 100)} ({outcome.seconds:.2f} s)"
    else:
        detail = outcome.reason
    notes = "".join(f"\n{'':9}{'':{ID_WIDTH}} note: {note}" for note in outcome.notes)
    return f"{outcome.outcome:<8} {outcome.check_id:<{ID_WIDTH}} {detail}{notes}"


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_failure(failure: CheckFailure) -> str:
    """The failure block: what must hold, the requests of the example, got, expected, replay."""
    check = registered().get(failure.check_id)
    title = f"FAILED {failure.check_id}" + (f": {check.summary}" if check else "")
    kind = "first failing example (not shrunk)" if failure.aborted else "minimal example"
    lines = [title, f"  {kind}, {len(failure.exchanges)} request(s) in the order sent:"]
    shown = failure.exchanges[:MAX_REQUESTS]
    budget = PRETTY_BUDGET
    for number, exchange in enumerate(shown, 1):
        block = _exchange_lines(number, exchange, pretty=budget > 0)
        budget -= len(block)
        lines += block
    if len(failure.exchanges) > len(shown):
        lines.append(
            f"    ... {len(failure.exchanges) - len(shown)} more (all are in --report-json)"
        )
    lines += [f"  got:      {failure.got}", f"  expected: {failure.expected}"]
    if failure.flaky:
        lines.append("  flaky:    the receiver did not fail again when the example was replayed")
    if failure.replay:
        lines.append(f"  replay:   {failure.replay}")
    return "\n".join(lines)


def _exchange_lines(number: int, exchange: Exchange, *, pretty: bool) -> list[str]:
    header = f"    {number}. POST {exchange.label} (Authorization: {exchange.authorization})"
    body = _pretty(exchange.body) if pretty else [_compact(exchange.body)]
    answer = exchange.reply.summary(160) if exchange.reply else f"no answer: {exchange.error}"
    return [header, *("       " + line for line in body), f"       -> {answer}"]


def _pretty(raw: bytes) -> list[str]:
    value = decode_body(raw)
    if isinstance(value, str):  # not JSON: show the bytes exactly, escapes and all
        return [raw_text(raw[:400]) + (f" ... ({len(raw)} bytes)" if len(raw) > 400 else "")]
    lines = json.dumps(value, indent=2, ensure_ascii=False).splitlines()
    if len(lines) > MAX_BODY_LINES:
        lines = lines[:MAX_BODY_LINES] + [f"... ({len(lines) - MAX_BODY_LINES} more lines)"]
    return lines


def raw_text(raw: bytes) -> str:
    """A body that is not JSON, as readable text: escapes for control and non-UTF-8 bytes only."""
    if not raw:
        return "(empty body)"
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _compact(raw: bytes) -> str:
    value = decode_body(raw)
    text = raw_text(raw) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= COMPACT_WIDTH else text[:COMPACT_WIDTH] + f" ... ({len(raw)} bytes)"


def format_summary(outcomes: Iterable[CheckOutcome], seconds: float) -> str:
    """``11 checks: 9 passed, 1 failed, 1 skipped in 12.3 s``."""
    outcomes = list(outcomes)
    counts = Counter(o.outcome for o in outcomes)
    noun = "check" if len(outcomes) == 1 else "checks"
    return (
        f"{len(outcomes)} {noun}: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped"
        + (f", {counts['waived']} waived" if counts["waived"] else "")
        + f" in {seconds:.1f} s"
    )


def format_report(outcomes: Iterable[CheckOutcome], seconds: float) -> str:
    """Lines, failure blocks and the summary: the whole text a run prints."""
    outcomes = list(outcomes)
    parts = ["\n".join(format_line(o) for o in outcomes)]
    parts += [format_failure(o.failure) for o in outcomes if o.failure]
    parts.append(format_summary(outcomes, seconds))
    return "\n\n".join(parts)


def report_document(
    target: str, seed: int, outcomes: Iterable[CheckOutcome], **extra: Any
) -> dict[str, Any]:
    """The ``--report-json`` document: target, seed, settings, one entry per check."""
    return {"target": strip_userinfo(target), "seed": seed, **extra, "checks": [_check_entry(o) for o in outcomes]}


def _check_entry(outcome: CheckOutcome) -> Mapping[str, Any]:
    entry: dict[str, Any] = {
        "id": outcome.check_id,
        "outcome": outcome.outcome,
        "reason": outcome.reason,
        "example": outcome.failure.as_dict() if outcome.failure else None,
        "examples": outcome.examples,
        "seconds": round(outcome.seconds, 3),
    }
    if outcome.settled_within is not None:
        entry["settled_within"] = outcome.settled_within
    if outcome.notes:
        entry["notes"] = list(outcome.notes)
    return entry
