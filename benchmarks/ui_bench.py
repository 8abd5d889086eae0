"""How fast does the inspection UI answer over a run of 100,000 deliveries?

Builds an outbox with one run of ``-n`` deliveries (realistic bodies of about 600 bytes, one
card per delivery, an issuerRequestId in each), one attempt each: 97% delivered (204), 2% dead
after a 503, 1% retrying after a timeout. Then times every page of the UI through Flask's test
client (in-process, no socket: the figure is the query and the rendering), median of
``--repeat`` requests each: run pages, failures, a card's timeline, and search by cardId,
operationId and issuerRequestId (and for a text nothing carries). Target: every page well under
a second (< 250 ms median).

Usage::

    python benchmarks/ui_bench.py                  # 100,000 deliveries
    python benchmarks/ui_bench.py -n 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.outbox import Attempt, Outbox
from d1sim.simulator.ui import create_ui_app

TARGET_MS = 250.0


def body(i: int) -> bytes:
    """One notification of card ``c-i`` (the shape D1 sends, with production details)."""
    op = {"operationId": f"op-{i:08d}", "operation": "PRODUCE", "status": "PENDING",
          "startTime": "2026-01-17T06:28:02.492Z", "cardId": f"c-{i}", "issuerRequestId": f"REQ-{i:08d}",
          "details": {"status": "DATA_PREPARED", "dueDate": "2026-01-21", "productionSite": "Gemenos",
                      "inputFileName": f"batch-{i // 1000:04d}.csv", "issuerRequestId": f"REQ-{i:08d}",
                      "consumerId": "0123456789abcdef0123456789abcdef"}}
    return orjson.dumps({"operations": [op]})


def build(path: Path, count: int) -> str:
    """An outbox at ``path`` with one run of ``count`` settled deliveries; return the run id."""
    with Outbox(path) as box:
        run = box.create_run("bench", "http://127.0.0.1:9/hook", {"issuer_id": "ISSUER0001"})
        box.add_deliveries(run, (Delivery(i, i * 0.01, body(i), (f"c-{i}",), ("DATA_PREPARED",), f"corr-{i}",
                                          "bench", f"c-{i}") for i in range(1, count + 1)), batch=5000)
        for start in range(1, count + 1, 5000):
            rows = []
            for i in range(start, min(start + 5000, count + 1)):
                if i % 100 == 0:
                    rows.append((i, Attempt(1e9 + i, None, 10000.0, b"", "timeout"), "pending", 2e9))
                elif i % 50 == 0:
                    rows.append((i, Attempt(1e9 + i, 503, 12.0, b"busy"), "dead", None))
                else:
                    rows.append((i, Attempt(1e9 + i, 204, 3.0), "delivered", None))
            box.record_attempts(rows)
    return run


def pages(run: str, count: int) -> dict[str, str]:
    """Label -> URL of every page worth timing."""
    middle = count // 2
    return {
        "runs list": "/",
        "run, first page": f"/runs/{run}",
        "run, deep page (keyset)": f"/runs/{run}?after={count - 100}",
        "run, state=dead": f"/runs/{run}?state=dead",
        "run, status=503, deep": f"/runs/{run}?status=503&after={middle}",
        "failures": "/failures",
        "failures, status=none": "/failures?status=none",
        "one delivery": f"/deliveries/{middle}",
        "card timeline": f"/cards/c-{middle}",
        "search cardId": f"/search?q=c-{middle}",
        "search operationId": f"/search?q=op-{middle:08d}",
        "search issuerRequestId": f"/search?q=REQ-{middle:08d}",
        "search, no match": "/search?q=nothing-like-this",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="deliveries in the run (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="requests per page (default: %(default)s)")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write the figures as JSON (python -m benchmarks)")
    args = parser.parse_args()
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ui.db"
        started = time.perf_counter()
        run = build(path, args.n)
        print(f"built {args.n:,} deliveries in {time.perf_counter() - started:.1f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)")
        client = create_ui_app(path).test_client()
        print("| page | median ms | max ms |\n|---|---:|---:|")
        worst = 0.0
        for label, url in pages(run, args.n).items():
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                answer = client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
                assert answer.status_code == 200, (url, answer.status_code)
            worst = max(worst, statistics.median(times))
            medians[label] = statistics.median(times)
            print(f"| {label} | {statistics.median(times):.1f} | {max(times):.1f} |")
        verdict = "met" if worst < TARGET_MS else "NOT met"
        print(f"slowest median {worst:.1f} ms (target < {TARGET_MS:.0f} ms): {verdict}")
    if args.json:
        slowest = max(medians, key=medians.__getitem__)
        figures = {"deliveries": args.n, "medians_ms": medians, "slowest": slowest, "target_ms": TARGET_MS}
        args.json.write_bytes(orjson.dumps(figures))


if __name__ == "__main__":
    main()
