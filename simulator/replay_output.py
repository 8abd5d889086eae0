"""What `d1sim replay` shows: a progress bar per scenario, a summary table, JSON/JUnit reports."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from d1sim.simulator.delivery.engine import DeliveryEvent
from d1sim.simulator.replay.run import ScenarioRef, ScenarioResult
from d1sim.simulator.reports.results import tally, write_json, write_junit


class ProgressBars:
    """One rich progress bar per scenario on stderr; silent when stderr is not a terminal."""

    def __init__(self, enabled: bool = True) -> None:
        console = Console(stderr=True)
        self.enabled = enabled and console.is_terminal
        self.progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[note]}"), TimeRemainingColumn(),
                                 console=console, disable=not self.enabled)
        if self.enabled:
            self.progress.start()

    def for_scenario(self, ref: ScenarioRef, owed: int) -> Any:
        """A callback for the sender that advances this scenario's bar once per settled delivery."""
        if not self.enabled:
            return None
        task = self.progress.add_task(ref.scenario.name, total=owed, note="")

        def advance(event: DeliveryEvent) -> None:
            note = f"{event.summary.retries} retries, {event.summary.dead} dead"
            self.progress.update(task, advance=event.state != "pending", note=note)
        return advance

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()


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
        "target": args.target,
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
