"""How fast is the mock D1? Orders per second beside a trivial endpoint, and notifications pushed.

Both parts run the mock D1 (``D1Server`` + its Flask app under waitress, as ``d1sim serve``
does) in a child process on 127.0.0.1, port 0; the client runs in this process.

1. **Order endpoint.** The same app also mounts ``POST /_bench/noop``: it parses the JSON body
   and answers 202 with a fixed operationId -- the cost of the server stack alone. Each
   repetition sends ``--orders`` requests to the no-op endpoint, then as many real orders
   (token check, schema check, idempotency index, SQLite insert), from ``--concurrency``
   keep-alive clients. Planning runs meanwhile, as in ``d1sim serve`` (one planning process
   expands, the server process stores the runs) and is timed until done. The issuer is paused,
   so no delivery competes. Target: orders >= 0.5 x no-op.
2. **Notifications pushed.** A reference receiver (``d1sim receiver``) runs in its own process;
   an issuer at time scale 0 (as fast as order allows) with ``maxOperations`` 10 gets
   ``--cards`` cards in one batch order while paused; once planned it is resumed, and the
   time until every lifecycle is delivered gives POSTs/s and operations/s. Every card's end
   state is then checked on the receiver's probe.

Usage::

    python benchmarks/serve_bench.py                          # 2,000 orders x 3, 1,000 cards
    python benchmarks/serve_bench.py --orders 300 --repeat 1  # quick check
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from flask import Response, request

from d1sim.contracts.payloads.inbound import sample_order

TARGET_RATIO = 0.5
ISSUER, PUSHED = "BENCH00001", "BENCH00002"
CARDS_PATH = "/banking/v1/issuers/{issuer}/physicalCards"
ORDER = sample_order()
DEADLINE = 600.0


def serve_child(db: str) -> None:
    """Child process: the mock D1 plus a no-op endpoint on one waitress server; prints its URL."""
    from d1sim.simulator.d1.app import D1Server, create_app
    from d1sim.simulator.d1.config import ServerSettings
    from d1sim.simulator.web.servers import serve

    server = D1Server(ServerSettings(db_path=db))
    app = create_app(server)

    @app.post("/_bench/noop")
    def noop() -> Response:
        request.get_json()
        return Response(b'{"operationId":"x"}', 202, mimetype="application/json")

    with server.running():
        serve(app, "127.0.0.1", 0, announce=lambda url: print(url, flush=True))


@contextmanager
def child(argv: list[str]) -> Iterator[str]:
    """A child process that prints its base URL first; yields the URL, terminates it after."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = next((w for w in line.split() if w.startswith("http://")), None)
        if url is None:
            raise RuntimeError(f"child did not start: {line!r}")
        yield url.rstrip("/")
    finally:
        proc.terminate()
        proc.wait(30)


def wait_for(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.05)
    return value


def token(http: httpx.Client, issuer: str) -> str:
    cred = http.post(f"/_sim/issuers/{issuer}/credentials").json()
    answer = http.post(
        "/banking/v1/oauth2/token",
        auth=(cred["clientId"], cred["clientSecret"]),
        data={"grant_type": "client_credentials"},
    )
    return str(answer.json()["access_token"])


def hammer(url: str, paths: list[str], headers: dict[str, str], concurrency: int) -> float:
    """POST ORDER to every path from ``concurrency`` keep-alive clients; return requests/s."""
    chunks = [paths[i::concurrency] for i in range(concurrency)]
    failures: list[str] = []

    def work(chunk: list[str]) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            for path in chunk:
                answer = http.post(path, json=ORDER)
                if answer.status_code != 202:
                    failures.append(f"{path}: {answer.status_code} {answer.text[:200]}")

    threads = [threading.Thread(target=work, args=(c,)) for c in chunks]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return len(paths) / elapsed


def measure_orders(url: str, http: httpx.Client, n: int, repeat: int, concurrency: int) -> dict[str, Any]:
    """Part 1: the no-op endpoint, then orders, ``repeat`` times; medians."""
    http.put(f"/_sim/issuers/{ISSUER}", json={"webhookUrl": "http://127.0.0.1:9/", "timeScale": 0})
    http.post(f"/_sim/issuers/{ISSUER}/pause")
    auth = {"Authorization": f"Bearer {token(http, ISSUER)}"}
    noop, orders, planned = [], [], []
    for r in range(repeat):
        noop.append(hammer(url, ["/_bench/noop"] * n, auth, concurrency))
        base = CARDS_PATH.format(issuer=ISSUER)
        begin = time.perf_counter()
        orders.append(hammer(url, [f"{base}/r{r}-c{i}/operations:production" for i in range(n)], auth, concurrency))
        wait_for(lambda: http.get("/_sim").json()["planning"] == 0, "planning")
        planned.append(n / (time.perf_counter() - begin))
    ratio = statistics.median(orders) / statistics.median(noop)
    return {
        "orders": n,
        "repeat": repeat,
        "concurrency": concurrency,
        "noop_per_s": round(statistics.median(noop)),
        "orders_per_s": round(statistics.median(orders)),
        "planned_per_s": round(statistics.median(planned)),
        "ratio": round(ratio, 3),
        "target": TARGET_RATIO,
        "met": ratio >= TARGET_RATIO,
    }


def measure_push(url: str, http: httpx.Client, receiver: str, cards: int) -> dict[str, Any]:
    """Part 2: ``cards`` lifecycles at time scale 0 pushed to the reference receiver."""
    hook = receiver + "/notifications/d1/v2/issuers/{issuerId}/cards"
    http.put(f"/_sim/issuers/{PUSHED}", json={"webhookUrl": hook, "timeScale": 0, "maxOperations": 10})
    http.post(f"/_sim/issuers/{PUSHED}/pause")
    auth = {"Authorization": f"Bearer {token(http, PUSHED)}"}
    body = {"cards": [{**ORDER, "cardId": f"push-{i}"} for i in range(cards)]}
    answer = http.post(
        CARDS_PATH.format(issuer=PUSHED) + "/operations:production", json=body, headers=auth, timeout=120
    )
    assert answer.status_code == 202, answer.text
    wait_for(lambda: http.get("/_sim").json()["planning"] == 0, "planning")
    before = http.get("/_sim").json()["dispatcher"]
    begin = time.perf_counter()
    http.post(f"/_sim/issuers/{PUSHED}/resume")
    after = wait_for(lambda: _quiet(http), "every lifecycle to be delivered")
    elapsed = time.perf_counter() - begin
    stats = httpx.get(receiver + "/_receiver/stats").json()
    shipped = sum(httpx.get(f"{receiver}/cards/push-{i}").json()["status"] == "CARD_SHIPPED" for i in range(cards))
    delivered = after.get("delivered", 0) - before.get("delivered", 0)
    return {
        "cards": cards,
        "seconds": round(elapsed, 2),
        "posts": stats["posts"],
        "operations": stats["operations"],
        "deliveries": delivered,
        "posts_per_s": round(stats["posts"] / elapsed),
        "operations_per_s": round(stats["operations"] / elapsed),
        "rejected": stats["rejected"],
        "cards_shipped": shipped,
    }


def _quiet(http: httpx.Client) -> dict[str, Any] | None:
    stats = http.get("/_sim").json()["dispatcher"]  # the paused issuer of part 1 still owes
    return stats if PUSHED not in stats["lanesByIssuer"] and stats["inFlight"] == 0 else None


def report(result: dict[str, Any]) -> list[str]:
    o, p = result["orders"], result["push"]
    mark = "met" if o["met"] else "MISSED"
    return [
        f"order endpoint ({o['orders']} requests x {o['repeat']}, {o['concurrency']} keep-alive clients, medians):",
        f"  no-op Flask endpoint, same stack:  {o['noop_per_s']:>7} req/s",
        f"  production orders (202):           {o['orders_per_s']:>7} req/s  "
        f"ratio {o['ratio']:.2f} (target >= {TARGET_RATIO}: {mark})",
        f"  orders planned into the outbox:    {o['planned_per_s']:>7} orders/s (202 to planned)",
        f"notifications pushed ({p['cards']} cards, happy-path, time scale 0, maxOperations 10):",
        f"  {p['deliveries']} deliveries in {p['posts']} POSTs ({p['operations']} operations) in "
        f"{p['seconds']} s: {p['posts_per_s']} POSTs/s, {p['operations_per_s']} operations/s",
        f"  receiver rejected {p['rejected']}; cards shipped on the probe: {p['cards_shipped']}/{p['cards']}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--cards", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--serve-d1", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_d1:
        serve_child(args.serve_d1)
        return 0
    if not 1 <= args.orders <= 100_000 or not 1 <= args.cards <= 1000:
        parser.error("--orders is 1-100000 and --cards 1-1000 (one batch order)")
    with (
        tempfile.TemporaryDirectory() as tmp,
        child([sys.executable, __file__, "--serve-d1", f"{tmp}/d1.db"]) as url,
        child([sys.executable, "-m", "d1sim", "receiver", "--port", "0"]) as receiver,
        httpx.Client(base_url=url, timeout=60) as http,
    ):
        result = {
            "orders": measure_orders(url, http, args.orders, args.repeat, args.concurrency),
            "push": measure_push(url, http, receiver, args.cards),
        }
    print("\n".join(report(result)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
