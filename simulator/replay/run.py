"""Replay scenarios against a receiver: plan into the outbox, deliver, then judge expectations.

A suite is several scenarios run one after the other, each as its own outbox run. Planning is
deterministic, so nothing but the deliveries needs storing: expectations are recomputed from the
scenario and its seed, which is also what lets a killed replay resume with the same verdicts.

Example::

    refs = resolve_scenarios(["happy-path", "qa/scenarios/"])
    results = Replayer(Outbox(), SenderConfig(url)).run_suite(refs)
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from d1sim.contracts.lifecycle.matching import compare_state
from d1sim.contracts.lifecycle.settling import DEFAULT_SETTLE, settle
from d1sim.contracts.scenario.loading import Scenario, load_bundled, load_scenario_file
from d1sim.contracts.scenario.source import ScenarioError
from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.engine import DeliverySummary, Progress, SenderConfig, deliver_run
from d1sim.simulator.delivery.outbox import Outbox, Run
from d1sim.simulator.errors import UsageError
from d1sim.simulator.replay.planning import Streamed, can_stream, prefetched, remaining
from d1sim.simulator.reports.results import CaseResult

if TYPE_CHECKING:
    from d1sim.contracts.scenario.expansion import CardExpectation

SCENARIO_SUFFIXES = (".yaml", ".yml")
PROBE_WORKERS = 8
# A failed end_state case per card is listed up to this many; the rest are counted.
MAX_CARD_CASES = 200

Probe = Callable[[str], "dict[str, Any] | None"]


@dataclass(frozen=True, slots=True)
class ScenarioRef:
    """A loaded scenario and where it came from: a bundled name or a file path."""

    scenario: Scenario
    ref: str


@dataclass(slots=True)
class ScenarioResult:
    """One scenario of a suite: its run, what was sent, and its verdicts."""

    ref: ScenarioRef
    run_id: str
    resumed: bool
    counts: dict[str, int]
    delivery: DeliverySummary | None
    cases: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return any(case.outcome == "failed" for case in self.cases)


def resolve_scenarios(specs: list[str]) -> list[ScenarioRef]:
    """Turn bundled names, files and folders (their *.yaml, sorted) into loaded scenarios.

    Raises:
        UsageError: a path that does not exist, an empty folder, an unknown name, or a bad
            scenario file (the message carries file, line, column and a did-you-mean).
    """
    refs: list[ScenarioRef] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in SCENARIO_SUFFIXES)
            if not files:
                raise UsageError(f"{spec}: no *.yaml scenario files in this folder")
            refs += [_load_file(p) for p in files]
        elif path.suffix in SCENARIO_SUFFIXES or path.exists():
            refs.append(_load_file(path))
        else:
            refs.append(_load_bundled(spec))
    return refs


def _load_file(path: Path) -> ScenarioRef:
    try:
        return ScenarioRef(load_scenario_file(path), str(path.resolve()))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None


def _load_bundled(name: str) -> ScenarioRef:
    try:
        return ScenarioRef(load_bundled(name), name)
    except KeyError as exc:
        raise UsageError(f"{exc.args[0]} (or give a path to a .yaml file)") from None


def fingerprint(scenario: Scenario, seed: int, target: str) -> str:
    """Identifies 'the same replay': scenario content, seed and target."""
    return hashlib.sha256(f"{scenario!r}|{seed}|{target}".encode()).hexdigest()[:16]


class Replayer:
    """Runs a suite through one outbox and one sender configuration."""

    def __init__(self, outbox: Outbox, config: SenderConfig, *, seed: int | None = None,
                 time_scale: float = 0.0, probe: Probe | None = None,
                 progress: Callable[[ScenarioRef, int | None], Progress | None] | None = None,
                 client: Any = None, issuer_id: str | None = None,
                 settle: float = DEFAULT_SETTLE, senders: int = 1) -> None:
        self.outbox, self.config, self.seed, self.issuer_id = outbox, config, seed, issuer_id
        self.senders = senders  # sender processes for a large run (see d1sim.simulator.delivery.lanes)
        self.time_scale, self.probe, self.progress, self.client = time_scale, probe, progress, client
        self.settle = settle  # seconds the end state may take to appear (asynchronous receivers)
        self._deadline, self._slowest = 0.0, 0.0

    def seed_of(self, ref: ScenarioRef) -> int:
        return ref.scenario.seed if self.seed is None else self.seed

    def config_for(self, ref: ScenarioRef) -> SenderConfig:
        """The sender settings, with the scenario's issuer id unless one was forced."""
        return replace(self.config, issuer_id=self.issuer_id or ref.scenario.issuer_id)

    def run_suite(self, refs: list[ScenarioRef], resume: str | None = None) -> list[ScenarioResult]:
        """Replay every scenario (resuming what an interrupted run of the same suite owes)."""
        prints = [fingerprint(r.scenario, self.seed_of(r), self.config_for(r).target) for r in refs]
        suite = hashlib.sha256("|".join(prints).encode()).hexdigest()[:16]
        earlier = self._earlier_runs(suite, resume)
        tag = next(iter(earlier.values())).options["suite"]["tag"] if earlier else secrets.token_hex(4)
        return [self._run_one(ref, fp, earlier.get(fp), {"key": suite, "tag": tag})
                for ref, fp in zip(refs, prints, strict=True)]

    def _earlier_runs(self, suite: str, resume: str | None) -> dict[str, Run]:
        """The runs of the newest unfinished invocation of this suite, by fingerprint."""
        runs = self.outbox.runs()
        if resume is not None:
            chosen = next((r for r in runs if r.id == resume), None)
            if chosen is None:
                raise UsageError(f"no run {resume} in {self.outbox.path}; see "
                                 f"'d1sim runs list --db {self.outbox.path}'")
            if chosen.options.get("suite", {}).get("key") != suite:
                raise UsageError(f"run {resume} was not made by this command (other scenarios, "
                                 "seed or target); give the same scenarios and --target")
        else:
            chosen = next((r for r in runs if r.options.get("suite", {}).get("key") == suite
                           and r.status != "done"), None)
        if chosen is None:
            return {}
        tag = chosen.options["suite"]["tag"]
        mine = [r for r in runs if r.options.get("suite", {}).get("tag") == tag]
        return {r.fingerprint: r for r in reversed(mine) if r.fingerprint}

    def _run_one(self, ref: ScenarioRef, fp: str, earlier: Run | None,
                 suite: dict[str, str]) -> ScenarioResult:
        started = time.monotonic()
        run_id = earlier.id if earlier else self._create(ref, fp, suite)
        planning = self.outbox.status(run_id) == "planning"
        stream = planning and self.time_scale == 0 and can_stream(self.outbox)
        if planning and not stream:
            # Expanded one thread ahead of storing: the two overlap (see d1sim.simulator.replay.planning).
            self.outbox.add_deliveries(run_id, prefetched(remaining(self._plan(ref), self.outbox.last_planned(run_id))))
        summary = None
        pending = self.outbox.summary(run_id)["pending"]
        if stream or pending:
            progress = self.progress(ref, None if stream else pending) if self.progress else None
            owed = (lambda: Streamed(self.outbox, run_id, self._plan_of(ref))) if stream else None
            summary = deliver_run(self.outbox, run_id, self.config_for(ref), client=self.client,
                                  time_scale=self.time_scale, progress=progress, owed=owed,
                                  senders=self.senders)
        counts = self.outbox.summary(run_id)
        result = ScenarioResult(ref, run_id, earlier is not None, counts, summary)
        result.cases = self.evaluate(ref, run_id)
        result.seconds = time.monotonic() - started
        return result

    def _create(self, ref: ScenarioRef, fp: str, suite: dict[str, str]) -> str:
        config = self.config_for(ref)
        options = {**config.public_options(), "scenario": ref.ref, "seed": self.seed_of(ref),
                   "time_scale": self.time_scale, "suite": suite}
        return self.outbox.create_run(ref.scenario.name, config.target, options, fingerprint=fp)

    def _plan(self, ref: ScenarioRef) -> Iterator[Delivery]:
        """The scenario's deliveries, in planning (seq) order; deterministic for its seed."""
        return iter(self._plan_of(ref)())

    def _plan_of(self, ref: ScenarioRef) -> Callable[[], Iterable[Delivery]]:
        """The scenario's expansion, to be called where it runs (it pickles: a streamed plan is
        expanded in the writer process, which loads faker itself)."""
        return partial(_expanded, ref.scenario, self.seed_of(ref))

    def evaluate(self, ref: ScenarioRef, run_id: str) -> list[CaseResult]:
        """The verdict of each expectation of the scenario on what the outbox holds."""
        expect, name = ref.scenario.expect, ref.scenario.name
        counts = self.outbox.summary(run_id)
        cases = []
        if expect.all_delivered:
            cases.append(_all_delivered(name, run_id, counts, self.outbox.path))
        if expect.responses:
            cases.append(_responses(name, run_id, expect.responses, self.outbox.final_statuses(run_id)))
        if expect.end_state:
            cases += self._end_state(ref)
        return cases

    def _end_state(self, ref: ScenarioRef) -> list[CaseResult]:
        name = ref.scenario.name
        if self.probe is None:
            return [CaseResult(name, "end_state", "skipped", "no --state-url given: the receiver's "
                               "state cannot be compared with the convergence rule")]
        checked, failures = 0, []
        self._deadline, self._slowest = time.monotonic() + self.settle, 0.0
        with ThreadPoolExecutor(PROBE_WORKERS) as pool:
            from d1sim.contracts.scenario.expansion import card_expectations

            stream = card_expectations(ref.scenario, seed=self.seed_of(ref))
            while chunk := list(islice(stream, 500)):
                for exp, problem in zip(chunk, pool.map(self._judge, chunk), strict=True):
                    checked += 1
                    if problem:
                        failures.append(CaseResult(name, f"end_state {exp.card_id}", "failed", problem,
                                                   {"cardId": exp.card_id,
                                                    "expected": exp.state.as_probe() if exp.state else None}))
        return _end_state_cases(name, checked, failures, self._slowest)

    def _judge(self, exp: CardExpectation) -> str | None:
        """Poll the probe until the card holds its expected state or the settle deadline passes."""
        outcome = settle(lambda: self._judge_once(exp), max(0.0, self._deadline - time.monotonic()))
        if outcome.problem is None:
            self._slowest = max(self._slowest, outcome.seconds)
        return outcome.problem

    def _judge_once(self, exp: CardExpectation) -> str | None:
        assert self.probe is not None
        try:
            held = self.probe(exp.card_id)
        except Exception as exc:  # a probe failure is this card's verdict, not a crash
            return f"card {exp.card_id}: the state probe failed: {exc}"
        if exp.state is None:
            return None if held is None else f"card {exp.card_id}: no known status was sent, held {held}"
        return compare_state(exp.state, held)


def _expanded(scenario: Scenario, seed: int) -> Iterator[Delivery]:
    from d1sim.contracts.scenario.expansion import planned_deliveries  # faker: only where it runs

    return planned_deliveries(scenario, seed=seed)


def _all_delivered(name: str, run_id: str, counts: dict[str, int], db: Path | None) -> CaseResult:
    if counts["dead"] or counts["pending"]:
        hint = f"d1sim deliveries list {run_id} --state dead" + (f" --db {db}" if db else "")
        return CaseResult(name, "all_delivered", "failed",
                          f"{counts['dead']} dead-lettered and {counts['pending']} still owed of "
                          f"{sum(counts.values())} deliveries (see: {hint})", counts)
    return CaseResult(name, "all_delivered", "passed", f"{counts['delivered']} deliveries delivered")


def _responses(name: str, run_id: str, wanted: tuple[str, ...], finals: dict[int | None, int]) -> CaseResult:
    def ok(status: int | None) -> bool:
        return status is not None and any(_matches(status, w) for w in wanted)

    bad = {str(status): count for status, count in finals.items() if not ok(status)}
    label = f"responses {'|'.join(wanted)}"
    if bad:
        return CaseResult(name, label, "failed", f"final answers outside {'|'.join(wanted)}: "
                          + ", ".join(f"{n} x {s}" for s, n in bad.items()), {"finals": bad})
    return CaseResult(name, label, "passed", f"{sum(finals.values())} final answers in {'|'.join(wanted)}")


def _matches(status: int, pattern: str) -> bool:
    pattern = pattern.lower()
    return str(status)[0] == pattern[0] if pattern.endswith("xx") else str(status) == pattern


def _end_state_cases(name: str, checked: int, failures: list[CaseResult],
                     slowest: float = 0.0) -> list[CaseResult]:
    if not failures:
        settled = f" (settled within {slowest:.2f} s)" if slowest else ""
        return [CaseResult(name, "end_state", "passed",
                           f"{checked} cards hold their converged state{settled}")]
    cases = failures[:MAX_CARD_CASES]
    if len(failures) > MAX_CARD_CASES:
        cases.append(CaseResult(name, "end_state (more cards)", "failed",
                                f"{len(failures) - MAX_CARD_CASES} more cards differ"))
    return cases
