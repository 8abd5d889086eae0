"""How far can the checker's verdicts be trusted? False alarms on correct receivers, catch rate
on broken ones.

Runs every check against each correct receiver of ``tests/simulator/correct_receivers.py``
(built in other ways than d1sim's own, sharing none of its convergence code) on ``--seeds``
seeds, and each broken receiver of ``tests/simulator/broken_receivers.py`` against the check
named for its bug on the same seeds. Prints:

- false alarms: (receiver, seed, check) verdicts *failed* on a correct receiver (target 0);
- catch rate: (broken receiver, seed) runs whose named check failed, out of all.

Usage::

    python benchmarks/false_alarms.py                    # 20 seeds (5 for the broken ones)
    python benchmarks/false_alarms.py --seeds 3 --catch-seeds 1 --max-examples 8
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "simulator"))

from broken_receivers import BROKEN  # noqa: E402
from broken_receivers import TOKEN as BROKEN_TOKEN  # noqa: E402
from correct_receivers import CLIENT_ID, CLIENT_SECRET, CORRECT, TOKEN, Correct  # noqa: E402

from d1sim.simulator.check.runner import app_context, run_checks  # noqa: E402
from d1sim.simulator.check.transport import WSGI_BASE  # noqa: E402
from d1sim.simulator.delivery.auth import Auth, OAuth2ClientCredentials, StaticBearer  # noqa: E402

BROKEN_SETTLE = 0.2  # the broken receivers apply before they answer


def _auth(row: Correct) -> Auth:
    if row.oauth:
        return OAuth2ClientCredentials(f"{WSGI_BASE}/authz/d1/v1/oauth2/token", CLIENT_ID,
                                       CLIENT_SECRET)
    return StaticBearer(TOKEN)


def false_alarms(seeds: range, examples: int, only: str = "") -> tuple[list[str], int]:
    """Every failed verdict on a correct receiver, and how many verdicts were given."""
    alarms, verdicts = [], 0
    for row in CORRECT:
        if only and not any(word and word in row.name for word in only.split(",")):
            continue
        for seed in seeds:
            with app_context(row.build(), auth=_auth(row)) as context:
                outcomes = run_checks(context, max_examples=examples, seed=seed)
            verdicts += len(outcomes)
            alarms += [f"{row.name} seed {seed}: {o.check_id}: {o.reason}"
                       for o in outcomes if o.failed]
            print(f"  correct  {row.name:<40} seed {seed:>2}: "
                  f"{sum(o.failed for o in outcomes)} failed", flush=True)
    return alarms, verdicts


def catches(seeds: int, examples: int) -> tuple[list[str], int]:
    """Every (broken receiver, seed) whose named check did not fail, and how many runs."""
    missed, runs = [], 0
    for row in BROKEN:
        for seed in range(seeds):
            with app_context(row.build(), auth=StaticBearer(BROKEN_TOKEN), timeout=row.timeout,
                             settle=BROKEN_SETTLE) as context:
                (outcome,) = run_checks(context, [row.fails], max_examples=examples, seed=seed)
            runs += 1
            if not outcome.failed:
                missed.append(f"{row.name} seed {seed}: {row.fails} {outcome.outcome}")
            print(f"  broken   {row.name:<40} seed {seed:>2}: {outcome.outcome}", flush=True)
    return missed, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 (default: 20)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (default: 0)")
    parser.add_argument("--catch-seeds", type=int, default=5,
                        help="seeds for the broken receivers (default: 5; each failure is shrunk)")
    parser.add_argument("--max-examples", type=int, default=15, help="per check (default: 15)")
    parser.add_argument("--correct", default="", metavar="TEXT,TEXT",
                        help="only the correct receivers whose name contains one of these")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    alarms, verdicts = false_alarms(seeds, args.max_examples, args.correct)
    missed, runs = catches(args.catch_seeds, args.max_examples)
    print(f"\nfalse alarms: {len(alarms)} of {verdicts} verdicts on correct receivers x "
          f"{args.seeds} seeds (target 0)")
    for alarm in alarms:
        print(f"  {alarm}")
    rate = (runs - len(missed)) / runs if runs else float("nan")
    print(f"catch rate: {runs - len(missed)}/{runs} = {rate:.1%} "
          f"({len(BROKEN)} broken receivers x {args.catch_seeds} seeds)")
    for miss in missed:
        print(f"  missed: {miss}")
    print(f"{args.max_examples} examples per check, {time.perf_counter() - started:.0f} s")
    return 1 if alarms else 0


if __name__ == "__main__":
    sys.exit(main())
