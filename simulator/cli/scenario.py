"""``d1sim scenario show NAME|FILE``: what a scenario will send, without sending anything.

The scenario is expanded exactly as ``d1sim replay`` would (same seed, same bodies): its
cards, each card's path of statuses, the faults, the batching, the expectations, and the
first deliveries with their virtual times, cards, statuses and fault labels.
"""

from __future__ import annotations

import argparse
import itertools
import json
from datetime import timedelta
from typing import Any

from d1sim.contracts.scenario.expansion import expand_scenario, planned_deliveries, summarize
from d1sim.contracts.scenario.loading import Scenario
from d1sim.simulator.cli.options import integer
from d1sim.simulator.errors import EXIT_OK
from d1sim.simulator.replay.run import resolve_scenarios

MAX_COUNTED_CARDS = 10_000  # above this, counting every delivery would take too long to preview
SHOWN_CARDS = 10


def add_parser(subparsers: Any) -> None:
    """Register ``d1sim scenario show``."""
    parser = subparsers.add_parser("scenario", help="preview what a scenario will send")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="cards, paths, faults and deliveries of a scenario, nothing sent",
                          description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                          epilog="example:\n  d1sim scenario show receiver-outage --deliveries 5\n"
                                 "  d1sim scenario show my-suite/late-cards.yaml --format json",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    show.add_argument("scenario", metavar="NAME|FILE", help="a bundled scenario's name or a .yaml file")
    show.add_argument("--seed", type=int, metavar="N", help="overrides the scenario's seed")
    show.add_argument("--deliveries", type=integer(0, 1_000_000), default=20, metavar="N",
                      help="how many deliveries to list (default: %(default)s)")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(func=show_scenario)


def preview(scenario: Scenario, seed: int | None, shown: int) -> dict[str, Any]:
    """The preview document of ``scenario`` (what ``--format json`` prints)."""
    seed = scenario.seed if seed is None else seed
    first = list(itertools.islice(planned_deliveries(scenario, seed=seed), shown))
    counted = scenario.cards.total <= MAX_COUNTED_CARDS
    totals = summarize(expand_scenario(scenario, seed=seed)) if counted else None
    return {
        "name": scenario.name,
        "description": scenario.description,
        "source": scenario.source,
        "seed": seed,
        "issuerId": scenario.issuer_id,
        "cards": {"total": scenario.cards.total, "ids": list(scenario.cards.ids[:SHOWN_CARDS]),
                  "spacingSeconds": scenario.cards.spacing.total_seconds()},
        "path": [{"status": n.status, "afterSeconds": n.offset.total_seconds(), "update": n.update}
                 for n in scenario.path],
        "batching": {"maxOperations": scenario.batching.max, "mixCards": scenario.batching.mix},
        "faults": [{"kind": f.kind, "label": f.tag, "params": {k: _plain(v) for k, v in f.params.items()}}
                   for f in scenario.faults],
        "receiver": {k: _plain(v) for k, v in scenario.receiver.items()},
        "expect": {"allDelivered": scenario.expect.all_delivered, "responses": list(scenario.expect.responses),
                   "endState": scenario.expect.end_state},
        "totals": None if totals is None else {
            "deliveries": totals.deliveries, "operations": totals.operations, "bytes": totals.bytes,
            "lastDueSeconds": totals.last_due, "faultLabels": dict(totals.faults)},
        "deliveries": [{"seq": d.seq, "dueSeconds": d.due, "cards": list(dict.fromkeys(d.card_ids)),
                        "statuses": list(d.statuses), "fault": d.fault, "bytes": len(d.body)} for d in first],
    }


def _plain(value: Any) -> Any:
    """A parameter as JSON has it: durations in seconds, the rest as is when JSON can hold it."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value if isinstance(value, str | int | float | bool | list | dict) or value is None else str(value)


def show_scenario(args: argparse.Namespace) -> int:
    """Print the preview as text or JSON."""
    [ref] = resolve_scenarios([args.scenario])
    doc = preview(ref.scenario, args.seed, args.deliveries)
    print(json.dumps(doc, indent=2, ensure_ascii=False) if args.format == "json" else render_text(doc))
    return EXIT_OK


def render_text(doc: dict[str, Any]) -> str:
    """The preview for people."""
    cards = doc["cards"]
    ids = f" ({', '.join(cards['ids'])}{', ...' if cards['total'] > len(cards['ids']) else ''})" if cards["ids"] else ""
    lines = [f"scenario {doc['name']}: {doc['description']}".rstrip(": "),
             f"  source:   {doc['source']}", f"  seed:     {doc['seed']}   issuer: {doc['issuerId']}",
             f"  cards:    {cards['total']}{ids}, started {cards['spacingSeconds']:g} s apart",
             f"  batching: at most {doc['batching']['maxOperations']} operations per POST, "
             + ("cards mixed" if doc["batching"]["mixCards"] else "one card per POST"),
             "  path of every card:"]
    lines += [f"    +{p['afterSeconds']:>10g} s  {p['status']}" + (f" (update {p['update']})" if p["update"] else "")
              for p in doc["path"]]
    lines.append("  faults:   " + (", ".join(_fault_text(f) for f in doc["faults"]) or "none"))
    if doc["receiver"]:
        lines.append("  receiver: " + ", ".join(f"{k}={v}" for k, v in doc["receiver"].items()))
    expect = doc["expect"]
    lines.append(f"  expect:   responses {', '.join(expect['responses'])}"
                 + (", all delivered" if expect["allDelivered"] else "")
                 + (", end state probed" if expect["endState"] else ""))
    totals = doc["totals"]
    lines.append(f"  sends:    {totals['deliveries']} deliveries, {totals['operations']} operations, "
                 f"{totals['bytes']:,} bytes over {totals['lastDueSeconds']:g} virtual s" if totals
                 else f"  sends:    not counted ({cards['total']} cards is over {MAX_COUNTED_CARDS:,})")
    lines.append(f"  first {len(doc['deliveries'])} deliveries:")
    lines += [_delivery_text(d) for d in doc["deliveries"]]
    return "\n".join(lines)


def _delivery_text(d: dict[str, Any]) -> str:
    fault = f"  fault={d['fault']}" if d["fault"] else ""
    statuses, cards = "/".join(d["statuses"]), ",".join(d["cards"])
    return f"    {d['seq']:>5}  +{d['dueSeconds']:>10g} s  {statuses:<40} cards={cards}{fault}"


def _fault_text(fault: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={json.dumps(v) if isinstance(v, list | dict) else v}" for k, v in fault["params"].items())
    return fault["label"] + (f" ({params})" if params else "")
