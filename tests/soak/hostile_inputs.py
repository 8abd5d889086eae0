"""The hostile-input campaign behind RELIABILITY.md's "Hostile input and fuzzing" figures.

Feeds each parser of d1sim known attacks and random input, in-process, each input under a time
limit, and counts per class: inputs tried, clear refusals, tracebacks (an exception that is not
the parser's own error, a 5xx, or "Traceback" on stderr) and hangs (over the time limit). Then
runs schemathesis against ``d1sim serve``'s /openapi.json (webhooks restricted to loopback) and
counts the cases and failures. The fast part of the same properties runs in CI
(tests/simulator/test_fuzz_parsers.py, test_d1_admin_bounds.py, test_d1_schemathesis.py).

Usage::

    PYTHONPATH=. python tests/soak/hostile_inputs.py                 # about 10 minutes
    PYTHONPATH=. python tests/soak/hostile_inputs.py --random 50 --schemathesis 5   # quick
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).parents[2]
LIMIT_S = 20.0  # an input that takes longer is a hang
Outcome = str  # "ok", "refused", "traceback", "hang"


def timed(action: Callable[[], Outcome]) -> Outcome:
    """Run ``action`` in a thread; "hang" when it outlives the limit."""
    box: list[Outcome] = []

    def run() -> None:
        try:
            box.append(action())
        except Exception as exc:  # noqa: BLE001 - counting is the point
            box.append(f"traceback: {type(exc).__name__}: {exc}"[:200])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(LIMIT_S)
    return box[0] if box else "hang"


# --- scenario files ------------------------------------------------------------------------------

STEPS = "".join(f"  - status: {s}\n" for s in (
    "CARD_PROD_REQUESTED", "DATA_PREPARED", "CARD_PROD_READY", "CARD_PROD_ONGOING", "CARD_PROD_DONE"))
HEAD = "name: x\ndescription: x\nseed: 1\n"


def known_scenarios() -> list[str]:
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    return [
        HEAD + "steps:\n" + STEPS + "  - status: CARD_SHIPPED\n    updates: 100000000\n",
        HEAD + "steps:\n" + STEPS + "  - status: CARD_SHIPPED\n    updates: 30000\n    every: 1s\n",
        HEAD.replace("seed: 1", f"seed: {10**32}") + "steps:\n" + STEPS,
        HEAD.replace("x\nseed", "a\x07b\nseed") + "steps:\n" + STEPS,
        HEAD + "receiver: " + "[" * 50_000 + "]" * 50_000 + "\nsteps:\n" + STEPS,
        bomb + HEAD + "steps: *i\n",
        HEAD + "cards: {count: 100000000}\nsteps:\n" + STEPS,
        HEAD + "steps:\n" + STEPS + "faults:\n" + "  - {kind: unknown_fields, fields: 100000}\n",
        "#" * (2 << 20),
        HEAD + "steps:\n" + STEPS + "batching: {max: 1e400}\n",
    ]


def scenario_outcome(text: str) -> Outcome:
    from d1sim.contracts.scenario.loading import ScenarioError, load_scenario_text

    try:
        load_scenario_text(text, "soak.yaml")
    except ScenarioError:
        return "refused"
    return "ok"


def random_scenarios(rng: random.Random, count: int) -> Iterator[str]:
    bundled = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "scenarios").glob("*.yaml"))]
    junk = ["&a [1]", "*a", "[[[[", "{", "\x00", "\x07", "\ud800", "1e999", "-1", str(10**40), ": :"]
    for _ in range(count):
        text = rng.choice(bundled)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text))
            patch = rng.choice(junk) if rng.random() < 0.5 else "".join(
                chr(rng.randrange(0, 0x3000)) for _ in range(rng.randint(1, 8)))
            text = text[:at] + patch + text[at + rng.randint(0, 20):]
        yield text


# --- command lines -------------------------------------------------------------------------------

HOSTILE_VALUES = ["nan", "inf", "-inf", "1e300", str(10**23), "10^23", "100000", "-1", "",
                  "http://[::1", "http://h:port/", "ftp://h/", "http://h/" + "a" * 70_000, "\x07"]


def command_lines() -> Iterator[list[str]]:
    from d1sim.simulator.cli import dispatch as cli

    for command in sorted(set(cli.COMMANDS)):
        parser = cli.build_parser([command])._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
        options = [o for a in parser._actions for o in a.option_strings
                   if a.nargs != 0 and o.startswith("--") and o != "--help"]
        for option in options:
            for value in HOSTILE_VALUES:
                yield [command, option, value]


def argv_outcome(argv: list[str]) -> Outcome:
    from d1sim.simulator.cli import dispatch as cli

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            cli.build_parser(argv).parse_args(argv)
        except SystemExit as exit_:
            if exit_.code != 2 or "Traceback" in stderr.getvalue():
                return f"traceback: exit {exit_.code}"
            return "refused"
    return "ok"


# --- validate ------------------------------------------------------------------------------------

def validate_inputs(folder: Path, rng: random.Random, count: int) -> Iterator[Path | str]:
    fifo = folder / "pipe.jsonl"
    os.mkfifo(fifo)
    yield fifo
    yield "/dev/zero"
    huge = folder / "huge.jsonl"
    with huge.open("wb") as out:
        out.write(b'{"a": "' + b"x" * 200_000_000 + b'"}\n')
    yield huge
    for i in range(count):
        path = folder / f"random-{i}{rng.choice(['.json', '.jsonl', '.txt'])}"
        path.write_bytes(rng.randbytes(rng.randint(0, 400)))
        yield path


def validate_outcome(path: Path | str) -> Outcome:
    from d1sim.simulator.cli import dispatch as cli

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(["validate", str(path)])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    if "Traceback" in stderr.getvalue() or code not in (0, 1, 2):
        return f"traceback: exit {code}"
    return "refused" if code == 2 else "ok"


# --- admin API -----------------------------------------------------------------------------------

def admin_requests(rng: random.Random, count: int) -> Iterator[tuple[str, str, object]]:
    huge = str(10**23)
    runs = "/_sim/issuers/ISSUER0001/runs"
    known: list[tuple[str, str, object]] = [
        ("GET", f"/_sim/deliveries/{huge}", None), ("POST", f"/_sim/deliveries/{huge}/resend", None),
        ("GET", f"/_sim/cards?offset={huge}", None), ("GET", f"/_sim/runs?offset={huge}", None),
        ("GET", "/_sim/runs/x/deliveries?state=", None), ("POST", "/_sim/clock/advance", {"by": ""}),
        ("POST", "/_sim/clock/advance", {"by": 1e300}), ("POST", runs, {"seed": 10**30}),
        ("POST", runs, {"yaml": HEAD.replace("x\nseed", "a\x07\nseed") + "steps: []"}),
        ("DELETE", runs, None), ("PUT", "/_sim/issuers/ISSUER0002", {"webhookUrl": "http://[::1"}),
    ]
    known += [("POST", runs, {"yaml": text}) for text in known_scenarios()[:8]]
    yield from known
    paths = ["/_sim/deliveries/{}", "/_sim/runs/{}", "/_sim/runs/{}/deliveries?offset={}",
             "/_sim/cards?limit={}", "/_sim/issuers/{}"]
    for _ in range(count):
        values = [rng.choice([huge, "-1", "", "%00", "a" * 5000, "nan", str(rng.randint(0, 10**6))])
                  for _ in range(2)]
        yield rng.choice(["GET", "POST", "PUT"]), rng.choice(paths).format(*values), rng.choice(
            [None, {"by": rng.random()}, {"yaml": rng.choice(known_scenarios())}, [1], "x"])


@contextlib.contextmanager
def admin_client(folder: Path) -> Iterator[Callable[[tuple[str, str, object]], Outcome]]:
    from d1sim.simulator.d1.app import D1Server, create_app
    from d1sim.simulator.d1.config import ServerSettings

    server = D1Server(ServerSettings(db_path=str(folder / "d1.db"), plan_workers=0,
                                     loopback_webhooks=True))
    server.register({"issuerId": "ISSUER0001", "webhookUrl": "http://127.0.0.1:9/hook"})
    client = create_app(server).test_client()

    def send(request: tuple[str, str, object]) -> Outcome:
        method, path, body = request
        answer = client.open(path, method=method, json=body)
        if answer.status_code >= 500:
            return f"traceback: {answer.status_code} on {method} {path[:60]}"
        return "ok" if answer.status_code < 400 else "refused"

    with server.running():
        yield send


# --- schemathesis --------------------------------------------------------------------------------

def schemathesis_campaign(folder: Path, examples: int) -> tuple[int, list[str]]:
    """(cases run, failures) of schemathesis against the mock D1's own OpenAPI document."""
    sys.path.insert(0, str(ROOT))
    from tests.simulator import test_d1_schemathesis as st_test

    server = st_test.fuzzed_server(folder / "st.db")
    cases = Counter[str]()
    import schemathesis

    from d1sim.simulator.d1.app import create_app

    original = schemathesis.Case.call_and_validate

    def counted(self: schemathesis.Case, *args: object, **kwargs: object) -> object:
        cases["run"] += 1
        return original(self, *args, **kwargs)

    schemathesis.Case.call_and_validate = counted  # type: ignore[method-assign]
    with server.running():
        schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(server))
        failures = [f for op in schema.get_all_operations() if (f := st_test.fuzz(op.ok(), examples))]
    return cases["run"], failures


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--random", type=int, default=500, help="random inputs per class")
    options.add_argument("--schemathesis", type=int, default=100, help="examples per operation")
    options.add_argument("--seed", type=int, default=0)
    args = options.parse_args(argv)
    rng = random.Random(args.seed)
    import logging

    logging.disable(logging.CRITICAL)  # the server logs every refusal
    results: dict[str, Counter[str]] = {}
    examples: dict[str, list[str]] = {}

    def tally(name: str, outcomes: Iterator[Outcome]) -> None:
        counts = results.setdefault(name, Counter())
        began = time.monotonic()
        for outcome in outcomes:
            kind = outcome.split(":")[0]
            counts[kind] += 1
            if kind in ("traceback", "hang"):
                examples.setdefault(name, []).append(outcome)
        counts["seconds"] = round(time.monotonic() - began)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scenarios = [*known_scenarios(), *random_scenarios(rng, args.random)]
        tally("scenario files", (timed(lambda t=t: scenario_outcome(t)) for t in scenarios))
        tally("command lines", (timed(lambda a=a: argv_outcome(a)) for a in command_lines()))
        tally("validate inputs", (timed(lambda p=p: validate_outcome(p))
                                  for p in validate_inputs(folder, rng, args.random)))
        with admin_client(folder) as send:
            tally("admin API requests", (timed(lambda r=r: send(r))
                                         for r in admin_requests(rng, args.random)))
        cases, failures = schemathesis_campaign(folder, args.schemathesis)
    print("| class | inputs tried | accepted | refused (clear message) | tracebacks | hangs | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name, c in results.items():
        tried = c["ok"] + c["refused"] + c["traceback"] + c["hang"]
        print(f"| {name} | {tried:,} | {c['ok']:,} | {c['refused']:,} | {c['traceback']} | "
              f"{c['hang']} | {c['seconds']} |")
    print(f"\nschemathesis: {cases:,} cases, {len(failures)} failing operations")
    for name, found in examples.items():
        print(f"\n{name}:", *found[:5], sep="\n  ")
    for failure in failures:
        print("\n" + failure[:2000])
    bad = sum(c["traceback"] + c["hang"] for c in results.values()) + len(failures)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
