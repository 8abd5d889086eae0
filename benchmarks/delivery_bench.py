"""Does the durable outbox slow delivery down? d1sim's sender against a bare posting loop.

A trivial WSGI receiver (answers 204, nothing else) runs under waitress in a subprocess on
127.0.0.1, port 0, so it does not share the senders' GIL. Prepared notification bodies (the
seed's shipment update with fresh ids; five per card, so per-card order matters) are sent, each
repetition, in two ways with the same ``httpx.Client`` settings and concurrency, each run in a
fresh process (so each has its own peak RSS):

- the ceiling: ``concurrency`` threads POSTing the bodies from a shared list, nothing stored;
- d1sim: ``Outbox.add_deliveries`` (timed apart) then ``deliver_run`` (scheduler, per-card
  order, every attempt committed to SQLite).

Reported: notifications/s (medians), the ratio deliver/ceiling (target >= 0.7), the store rate
and the peak RSS of each kind of process. Loopback only, bounded loops.

Usage::

    python benchmarks/delivery_bench.py                      # 20,000 notifications, 3 runs
    python benchmarks/delivery_bench.py -n 2000 --repeat 1   # quick check
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import orjson

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.engine import SenderConfig, build_client, deliver_run
from d1sim.simulator.delivery.outbox import Outbox

SEED = Path(__file__).parent.parent / "tests" / "data" / "seed" / "card-shipped-update.json"
PATH = "/notifications/d1/v2/issuers/{issuerId}/cards"
PER_CARD = 5
TARGET_RATIO = 0.7
MAX_NOTIFICATIONS = 1_000_000


def receiver_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The fastest honest receiver: read the body, answer 204."""
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("204 No Content", [])
    return []


def serve_receiver() -> None:
    """Child process: bind 127.0.0.1:0, print the base URL, serve until killed."""
    from waitress import create_server

    server = create_server(receiver_app, host="127.0.0.1", port=0, threads=8)
    print(f"http://127.0.0.1:{server.effective_port}", flush=True)
    server.run()


def start_receiver() -> tuple[subprocess.Popen[str], str]:
    """Start the receiver subprocess; its socket listens before it prints the URL."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    url = child.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        child.kill()
        raise SystemExit(f"the receiver did not start (said {url!r})")
    return child, url


def prepare(n: int) -> list[Delivery]:
    """``n`` deliveries of realistic bodies, ``PER_CARD`` per card, in planning order."""
    template = orjson.loads(SEED.read_bytes())
    deliveries = []
    for seq in range(n):
        card = f"card-{seq // PER_CARD:08d}"
        for op in template["operations"]:
            op["cardId"], op["operationId"] = card, f"op-{card}"
        deliveries.append(
            Delivery(
                seq,
                0.0,
                orjson.dumps(template),
                (card,),
                ("CARD_SHIPPED",),
                f"corr-{seq}",
                "bench",
                card,
            )
        )
    return deliveries


def post_all(config: SenderConfig, deliveries: list[Delivery]) -> float:
    """The ceiling: POST every body from ``concurrency`` threads, no outbox; seconds taken."""
    cursor, lock, failures = iter(deliveries), threading.Lock(), []

    def work(client: httpx.Client) -> None:
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                return
            headers = {"Content-Type": "application/json", "x-correlation-id": item.correlation_id}
            if client.post(config.target, content=item.body, headers=headers).status_code != 204:
                failures.append(item.seq)

    with build_client(config) as client:
        start = time.perf_counter()
        threads = [threading.Thread(target=work, args=(client,)) for _ in range(config.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
    assert not failures, f"{len(failures)} POSTs failed"
    return elapsed


def outbox_run(
    config: SenderConfig, deliveries: list[Delivery], folder: Path
) -> tuple[float, float]:
    """d1sim's way: store every delivery, then deliver the run; (store s, deliver s)."""
    box = Outbox(folder / "bench.db")
    start = time.perf_counter()
    run = box.create_run("bench", config.target, config.public_options())
    box.add_deliveries(run, deliveries)
    stored = time.perf_counter()
    summary = deliver_run(box, run, config)
    done = time.perf_counter()
    assert summary.delivered == len(deliveries), summary
    assert box.summary(run) == {"pending": 0, "delivered": len(deliveries), "dead": 0}
    box.close()
    return stored - start, done - stored


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_once(mode: str, url: str, n: int, concurrency: int) -> dict[str, float]:
    """Child process: one run of one mode, with this process's own peak RSS."""
    config = SenderConfig(url + PATH, concurrency=concurrency)
    deliveries = prepare(n)
    if mode == "ceiling":
        figures = {"deliver": n / post_all(config, deliveries)}
    else:
        with tempfile.TemporaryDirectory() as folder:
            stored, sent = outbox_run(config, deliveries, Path(folder))
        figures = {"store": n / stored, "deliver": n / sent, "both": n / (stored + sent)}
    return {**figures, "rss_mb": peak_rss_mb()}


def run_child(mode: str, url: str, n: int, concurrency: int) -> dict[str, float]:
    """Run ``measure_once`` in a fresh process, so each mode's peak RSS is its own."""
    args = [
        sys.executable,
        __file__,
        "--mode",
        mode,
        "--url",
        url,
        "-n",
        str(n),
        "--concurrency",
        str(concurrency),
    ]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return orjson.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure(n: int, repeat: int, concurrency: int) -> dict[str, Any]:
    """Alternate ceiling and outbox runs ``repeat`` times against one receiver."""
    child, url = start_receiver()
    runs: dict[str, list[dict[str, float]]] = {"ceiling": [], "outbox": []}
    try:
        for _ in range(repeat):
            for mode in runs:
                runs[mode].append(run_child(mode, url, n, concurrency))
    finally:
        child.kill()
        child.wait()
    return summarize(n, concurrency, runs)


def summarize(n: int, concurrency: int, runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    def median(mode: str, figure: str) -> float:
        return statistics.median(run[figure] for run in runs[mode])

    ceiling = median("ceiling", "deliver")
    return {
        "notifications": n,
        "concurrency": concurrency,
        "runs": len(runs["ceiling"]),
        "ceiling_per_s": ceiling,
        "deliver_per_s": median("outbox", "deliver"),
        "store_per_s": median("outbox", "store"),
        "store_and_deliver_per_s": median("outbox", "both"),
        "ratio": median("outbox", "deliver") / ceiling,
        "ratio_with_store": median("outbox", "both") / ceiling,
        "peak_rss_mb_ceiling": median("ceiling", "rss_mb"),
        "peak_rss_mb": median("outbox", "rss_mb"),
        "all_runs": runs,
    }


def report(result: dict[str, Any]) -> Iterable[str]:
    yield (
        f"{result['notifications']:,} notifications, concurrency {result['concurrency']}, "
        f"medians of {result['runs']} run(s)"
    )
    yield f"  ceiling (bare httpx loop)  {result['ceiling_per_s']:>9,.0f} /s"
    yield f"  d1sim deliver_run          {result['deliver_per_s']:>9,.0f} /s"
    yield f"  outbox add_deliveries      {result['store_per_s']:>9,.0f} /s"
    yield f"  store + deliver            {result['store_and_deliver_per_s']:>9,.0f} /s"
    verdict = "ok" if result["ratio"] >= TARGET_RATIO else "BELOW TARGET"
    yield (
        f"  ratio deliver/ceiling      {result['ratio']:>9.2f}   "
        f"(target >= {TARGET_RATIO}: {verdict})"
    )
    yield f"  ratio store+deliver        {result['ratio_with_store']:>9.2f}"
    yield (
        f"  peak RSS, d1sim process    {result['peak_rss_mb']:>9.0f} MB "
        f"(ceiling process: {result['peak_rss_mb_ceiling']:.0f} MB)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--notifications", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("ceiling", "outbox"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n = min(max(args.notifications, PER_CARD), MAX_NOTIFICATIONS)
    if args.serve:
        serve_receiver()
        return 0
    if args.mode:  # a child measuring one run
        if not args.url.startswith("http://127.0.0.1:"):
            parser.error("loopback only")
        print(orjson.dumps(measure_once(args.mode, args.url, n, args.concurrency)).decode())
        return 0
    result = measure(n, max(args.repeat, 1), max(args.concurrency, 1))
    print("\n".join(report(result)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
