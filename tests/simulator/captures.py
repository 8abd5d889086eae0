"""Captures for ``d1sim validate`` tests: shuffled lifecycles with every kind of finding."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import orjson

from d1sim.contracts.payloads.factory import PayloadFactory

CUTS = ("status", "card", "unknown", "error", "skip", "clash", "order", "late", "id")


def spoil(op: dict, how: str, rng: random.Random) -> None:
    """Make one operation wrong in one of the ways ``d1sim validate`` reports."""
    details = op["details"]
    if how == "status":
        op["status"] = "PENDING" if op["status"] != "PENDING" else "SUCCESSFUL"
    elif how == "card":
        op["cardId"] = f"other-{rng.randrange(10**6)}"
    elif how == "unknown":
        details["status"] = "CARD_PROD_PAUSED"  # unknown to the model: allowed, not recorded
    elif how == "error":
        op["errorCode"] = "E42"
    elif how == "skip":
        details["status"] = "CARD_PROD_DONE"  # a forward skip (a warning) if nothing between
    elif how == "clash":
        details["status"], op["status"] = "DATA_EXCEPTION", "FAILED"  # impossible after a shipment
    elif how == "order" and isinstance(details.get("shipment"), dict):
        details["shipment"].pop("lastUpdatedAt", None)
        details["shipment"]["note"] = rng.random()  # unstamped updates that differ: an error
    elif how == "late":
        op["startTime"], op["endTime"] = op.get("endTime", op["startTime"]), op["startTime"]
    elif how == "id":
        op["operationId"] = 7  # not a string: a schema error, and no lifecycle to record


def capture_lines(seed: int, cards: int) -> Iterator[bytes]:
    """Shuffled lifecycles, some operations spoiled, a few bulk lines, blank and broken lines."""
    factory, rng = PayloadFactory(seed), random.Random(seed)
    paths = sorted(factory.model.paths())
    operations = [
        op
        for _ in range(cards)
        for op in factory.lifecycle(rng.choice(paths), shipment_updates=rng.randint(0, 3))
    ]
    rng.shuffle(operations)
    for op in operations:
        if rng.random() < 0.08:
            spoil(op, rng.choice(CUTS), rng)
        elif isinstance(op["details"].get("shipment"), dict) and rng.random() < 0.1:
            spoil(op, "order", rng)
    while operations:
        size = rng.choice((1, 1, 1, 2, 3))
        body, operations = operations[:size], operations[size:]
        yield orjson.dumps({"operations": body}) + b"\n"
        if rng.random() < 0.01:
            yield rng.choice((b"\n", b'{"operations": [\n', b"  \r\n", b'{"operations": []}\n'))


def mixed_capture(folder: Path, seed: int = 5, cards: int = 150) -> list[Path]:
    """Two JSON Lines files with one capture between them: lifecycles span both files."""
    lines = list(capture_lines(seed, cards))
    first, second = folder / "a.jsonl", folder / "b.ndjson"
    first.write_bytes(b"".join(lines[: len(lines) // 2]))
    second.write_bytes(b"".join(lines[len(lines) // 2 :]).rstrip(b"\n"))  # no final newline
    return [first, second]
