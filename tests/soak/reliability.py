"""The reliability campaign behind RELIABILITY.md: SIGKILL rounds, faults per kind, slow clients.

Everything runs on 127.0.0.1, every loop is bounded in count and time. A reference receiver runs
in this process and counts what arrives; ``d1sim replay`` and ``d1sim serve`` run as
subprocesses and are killed with SIGKILL at random moments, then restarted on the same database.

    python -m tests.soak.reliability            # the figures of RELIABILITY.md (a few minutes)
    python -m tests.soak.reliability --quick    # the CI-sized campaign (tests/soak/test_reliability.py)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from d1sim.contracts.scenario.expansion import planned_deliveries
from d1sim.contracts.scenario.loading import load_bundled, load_scenario_file
from d1sim.simulator.receiver import ReceiverConfig, create_app
from d1sim.simulator.web.servers import running_server

HOOK = "/notifications/d1/v2/issuers/{issuerId}/cards"
ISSUER = "ISSUER0001"
CLI = [sys.executable, "-m", "d1sim"]
STEPS = (
    "steps:\n  - status: CARD_PROD_REQUESTED\n  - {status: DATA_PREPARED, after: 1m}\n"
    "  - {status: CARD_PROD_READY, after: 1h}\n  - {status: CARD_PROD_DONE, after: 1h}\n"
)


@dataclass(frozen=True)
class Profile:
    """How big the campaign is."""

    replay_cards: int = 2000
    replay_kills: int = 10
    serve_cards: int = 300
    serve_kills: int = 8
    fault_cards: int = 100
    slow_clients: int = 200
    deadline: float = 240.0  # seconds any one phase may take before it is called a hang


QUICK = Profile(replay_cards=150, replay_kills=2, serve_cards=20, serve_kills=2, fault_cards=10, slow_clients=200)


@contextmanager
def receiver(tmp: Path, name: str, **knobs: Any) -> Iterator[tuple[str, Any]]:
    """A reference receiver (SQLite state) on a free loopback port; yields (url, its store)."""
    app = create_app(ReceiverConfig(db_path=str(tmp / f"{name}-receiver.db"), **knobs))
    store = app.extensions["d1sim.receiver"].store
    try:
        with running_server(app) as url:
            yield url, store
    finally:
        store.close()


def scenario_file(tmp: Path, cards: int, per_post: int = 10) -> Path:
    """A scenario of ``cards`` cards, four statuses each, up to ``per_post`` operations per POST."""
    path = tmp / f"soak-{cards}-{per_post}.yaml"
    path.write_text(f"name: soak\ndescription: soak\nseed: 3\ncards:\n  count: {cards}\n"
                    f"batching:\n  max: {per_post}\n{STEPS}")
    return path


def operations(deliveries: Any) -> int:
    return sum(len(d.statuses) for d in deliveries)


def kill_at_random(argv: list[str], rng: random.Random, kills: int, env: dict[str, str] | None = None) -> int:
    """Start ``argv`` and SIGKILL it at a random moment, ``kills`` times at most; the kills made."""
    made = 0
    for _ in range(kills):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            proc.wait(timeout=rng.uniform(0.8, 2.5))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            made += 1
        else:
            break  # it finished before the kill: nothing left to interrupt
    return made


def replay_rounds(tmp: Path, profile: Profile, rng: random.Random) -> dict[str, Any]:
    """SIGKILL ``d1sim replay`` mid-run, resume it on the same outbox, count what arrived."""
    path = scenario_file(tmp, profile.replay_cards)
    expected = operations(planned_deliveries(load_scenario_file(path)))
    with receiver(tmp, "replay") as (url, store):
        argv = [*CLI, "replay", str(path), "--target", url + HOOK, "--db", str(tmp / "replay.db"),
                "--no-progress", "--concurrency", "4"]
        kills = kill_at_random(argv, rng, profile.replay_kills)
        final = subprocess.run(argv, capture_output=True, text=True, timeout=profile.deadline)
        stats = store.stats()
    return {"kills": kills, "final_exit": final.returncode, "expected": expected,
            "received": stats["distinct_operations"], "lost": expected - stats["distinct_operations"],
            "duplicated": stats["operations"] - stats["distinct_operations"]}


def descendants(root: int) -> set[int]:
    """Living processes below ``root`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X"):
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class Serve:
    """``d1sim serve`` as a subprocess on a free port; ``start`` again after a kill."""

    def __init__(self, db: Path, config: Path) -> None:
        self.argv = [*CLI, "serve", "--port", "0", "--db", str(db), "--config", str(config)]
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = line.split("listening on ", 1)[1].split()[0] if "listening on" in line else ""

    def kill(self) -> int:
        """SIGKILL; how many processes it had started still run 10 s later (then ended here)."""
        children = descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()  # type: ignore[union-attr]
        _wait_gone(children)
        left = {p for p in children if _running(p)}
        for pid in left:  # our own orphans: count them, then do not leave them behind
            os.kill(pid, signal.SIGKILL)
        return len(left)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()  # type: ignore[union-attr]


def _wait_gone(pids: set[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while any(_running(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _order_and_kill(serve: Serve, profile: Profile, rng: random.Random) -> tuple[int, int]:
    """Order the cards, then SIGKILL and restart the server; (kills, orphans left)."""
    cards = [{"cardId": f"soak-{i}", "distributionChannel": "THALES"} for i in range(profile.serve_cards)]
    batch = f"{serve.url}/banking/v1/issuers/{ISSUER}/physicalCards/operations:production"
    assert httpx.post(batch, json={"cards": cards}, timeout=30).status_code == 202
    kills = orphans = 0
    for _ in range(profile.serve_kills):
        time.sleep(rng.uniform(0.5, 2.0))
        orphans += serve.kill()
        kills += 1
        serve.start()
    return kills, orphans


def serve_rounds(tmp: Path, profile: Profile, rng: random.Random) -> dict[str, Any]:
    """Order cards, SIGKILL ``d1sim serve`` mid-lifecycle, restart it, count what arrived."""
    per_card = operations(planned_deliveries(load_bundled("happy-path")))
    expected = per_card * profile.serve_cards
    db, config = tmp / "serve.db", tmp / "issuers.yaml"
    with receiver(tmp, "serve") as (url, store):
        config.write_text(f"- issuerId: {ISSUER}\n  webhookUrl: {url}{HOOK}\n  timeScale: 20000\n"
                          "  requireToken: false\n  maxOperations: 1\n")
        serve = Serve(db, config)
        try:
            kills, orphans = _order_and_kill(serve, profile, rng)
            deadline = time.monotonic() + profile.deadline
            while store.stats()["distinct_operations"] < expected and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            serve.stop()
        stats = store.stats()
    return {"kills": kills, "orphans_left": orphans, "expected": expected,
            "received": stats["distinct_operations"], "lost": expected - stats["distinct_operations"],
            "duplicated": stats["operations"] - stats["distinct_operations"]}


# kind -> (receiver knobs, replay options). Injections are counted by the receiver ("faulted");
# a too-slow answer is injected on every attempt, some of which time out before the receiver
# even sees them, so there every recorded attempt must be a failure instead.
SLOW = "answers slower than --timeout"
FAULT_KINDS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "503 on the first 20 calls": ({"fail_first": 20, "fail_status": 503}, []),
    "500 on 30% of calls": ({"fault_rate": 0.3, "fault_status": 500, "seed": 7}, []),
    "429 on the first 10 calls": ({"fail_first": 10, "fail_status": 429}, []),
    "400 (permanent) on the first 5 calls": ({"fail_first": 5, "fail_status": 400}, []),
    SLOW: ({"latency": 0.3}, ["--timeout", "0.1", "--max-attempts", "2"]),
}


def fault_rounds(tmp: Path, profile: Profile) -> dict[str, Any]:
    """Per fault kind: what the receiver injected, what the outbox recorded, nothing unaccounted."""
    path = scenario_file(tmp, profile.fault_cards, per_post=1)
    planned = len(list(planned_deliveries(load_scenario_file(path))))
    results = {}
    for number, (kind, (knobs, options)) in enumerate(FAULT_KINDS.items()):
        db = tmp / f"fault-{number}.db"
        with receiver(tmp, f"fault-{number}", **knobs) as (url, store):
            argv = [*CLI, "replay", str(path), "--target", url + HOOK, "--db", str(db), "--no-progress",
                    "--backoff-base", "0.01", "--backoff-cap", "0.05", "--max-attempts", "8", *options]
            subprocess.run(argv, capture_output=True, timeout=profile.deadline, check=False)
            stats = store.stats()
        account = _outbox_account(db)
        injected = account["attempts"] if kind == SLOW else stats["faulted"]
        account = {"planned": planned, **account, "injected": injected, "receiver_saw": stats["posts"]}
        account["unaccounted"] = planned - account["delivered"] - account["dead"]
        results[kind] = account
    return results


def _outbox_account(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        states = dict(conn.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall())
        failed = conn.execute("SELECT COUNT(*) FROM attempts WHERE status_code IS NULL OR status_code >= 300")
        attempts = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        return {"delivered": states.get("delivered", 0), "dead": states.get("dead", 0),
                "pending": states.get("pending", 0), "attempts": attempts,
                "failed_attempts_recorded": failed.fetchone()[0]}


def slow_client_round(profile: Profile) -> dict[str, Any]:
    """Hold ``slow_clients`` sockets trickling a header while timing normal requests."""
    app = create_app()
    with running_server(app) as url, ExitStack() as stack:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        slow = [stack.enter_context(socket.create_connection((host, int(port)), timeout=5))
                for _ in range(profile.slow_clients)]
        latencies = []
        header = b"GET /_receiver/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for offset in range(10):
            for sock in slow:
                sock.sendall(header[offset:offset + 1])
            begin = time.perf_counter()
            assert httpx.get(url + "/_receiver/stats", timeout=5).status_code == 200
            latencies.append((time.perf_counter() - begin) * 1000)
        held = sum(1 for sock in slow if _open(sock))
    return {"slow_clients": profile.slow_clients, "held": held, "requests": len(latencies),
            "max_ms": round(max(latencies), 1), "median_ms": round(sorted(latencies)[len(latencies) // 2], 1)}


def _open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def campaign(tmp: Path, profile: Profile, seed: int = 1) -> dict[str, Any]:
    """Every round of the campaign; a dict of figures."""
    rng = random.Random(seed)
    started = time.monotonic()
    figures: dict[str, Any] = {
        "profile": asdict(profile),
        "replay": replay_rounds(tmp, profile, rng),
        "serve": serve_rounds(tmp, profile, rng),
        "faults": fault_rounds(tmp, profile),
        "slow_clients": slow_client_round(profile),
    }
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI-sized campaign")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="d1sim-soak-") as tmp:
        figures = campaign(Path(tmp), QUICK if args.quick else Profile(), args.seed)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
