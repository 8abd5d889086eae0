"""What `d1sim replay` shows: a progress bar per scenario, a summary table, JSON/JUnit reports."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from d1sim.simulator.delivery.engine import DeliveryEvent
from d1sim.simulator.redaction import strip_userinfo
from d1sim.simulator.replay.run import ScenarioRef, ScenarioResult
from d1sim.simulator.reports.results import tally, write_json, write_junit
from d1sim.simulator.ticker import INTERVAL, Ticker


class ProgressBars:
    """One rich progress bar per scenario on a terminal; off one (CI), a line every few seconds."""

    def __init__(self, enabled: bool = True, interval: float = INTERVAL) -> None:
        console = Console(stderr=True)
        self.enabled = enabled and console.is_terminal
        self.progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[note]}"), TimeRemainingColumn(),
                                 console=console, disable=not self.enabled)
        if self.enabled:
            self.progress.start()
        self.settled = 0
        self.owed: int | None = 0  # None once a scenario's total is not known (still planning)
        self.ticker = (Ticker("d1sim replay", lambda: self.settled, "deliveries settled", interval=interval,
                              total=lambda: self.owed).__enter__() if enabled and not self.enabled else None)

    def for_scenario(self, ref: ScenarioRef, owed: int | None) -> Any:
        """A callback for the sender that advances this scenario's bar once per settled delivery.

        ``owed`` is None while the scenario is still being planned (its bar has no total yet).
        """
        if self.ticker is not None:
            self.owed = self.owed + owed if owed is not None and self.owed is not None else None
            return self._count
        if not self.enabled:
            return None
        task = self.progress.add_task(ref.scenario.name, total=owed, note="")

        def advance(event: DeliveryEvent) -> None:
            note = f"{event.summary.retries} retries, {event.summary.dead} dead"
            self.progress.update(task, advance=event.state != "pending", note=note)
        return advance

    def _count(self, event: DeliveryEvent) -> None:
        self.settled += event.state != "pending"

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
        if self.ticker is not None:
            self.ticker.__exit__(None, None, None)


def make_console() -> Console:
    # Without a terminal rich assumes 80 columns; CI logs are wider and run ids must stay whole.
    plain = Console(highlight=False)
    return plain if plain.is_terminal else Console(highlight=False, width=130)


def print_results(results: list[ScenarioResult], console: Console | None = None) -> None:
    """The summary table, then every failed expectation with its reason."""
    console = console or make_console()
    table = Table(title="d1sim replay", title_justify="left")
    for column in ("scenario", "run", "delivered", "dead", "attempts", "expectations", "seconds"):
        table.add_column(column, justify="right" if column not in ("scenario", "run") else "left")
    for r in results:
        counts = tally(r.cases)
        verdict = f"{counts['passed']} passed" + "".join(
            f", {counts[k]} {k}" for k in ("failed", "skipped") if counts[k])
        attempts = str(r.delivery.attempts) if r.delivery else "-"
        run = r.run_id + (" (resumed)" if r.resumed else "")
        table.add_row(r.ref.scenario.name, run, str(r.counts["delivered"]), str(r.counts["dead"]),
                      attempts, verdict, f"{r.seconds:.1f}", style="red" if r.failed else None)
    console.print(table)
    for r in results:
        for case in r.cases:
            if case.outcome == "failed":
                console.print(f"FAILED {r.ref.scenario.name} / {case.name}: {case.reason}")
    total = tally(c for r in results for c in r.cases)
    console.print(f"{len(results)} scenarios: {total['passed']} expectations passed, "
                  f"{total['failed']} failed, {total['skipped']} skipped")


def report_document(args: argparse.Namespace, results: list[ScenarioResult]) -> dict[str, Any]:
    """The JSON report: the target, the seed, and per scenario its run and verdicts."""
    return {
        "target": strip_userinfo(args.target),
        "seed": args.seed,
        "scenarios": [{
            "scenario": r.ref.scenario.name, "source": r.ref.ref, "run_id": r.run_id,
            "resumed": r.resumed, "deliveries": r.counts,
            "attempts": r.delivery.attempts if r.delivery else None,
            "seconds": round(r.seconds, 3),
            "expectations": [c.as_dict() for c in r.cases],
        } for r in results],
        "summary": dict(tally(c for r in results for c in r.cases)),
    }


def write_reports(args: argparse.Namespace, results: list[ScenarioResult]) -> None:
    """Write --report-json and --report-junit when asked."""
    if args.report_json:
        write_json(args.report_json, report_document(args, results))
    if args.report_junit:
        write_junit(args.report_junit, [c for r in results for c in r.cases], name="d1sim replay")
    written = [p for p in (args.report_json, args.report_junit) if p]
    if written:
        print("reports: " + ", ".join(written), file=sys.stderr)
