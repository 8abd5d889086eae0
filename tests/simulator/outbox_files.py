"""Outbox files as an older d1sim left them, made with the real migrations up to that version."""

from __future__ import annotations

from pathlib import Path

import orjson

from d1sim.simulator.delivery.outbox import SCHEMA
from d1sim.simulator.storage import Database, Schema

OLD_RUN = "r-20250101-0ld000"
OLD_BODY = orjson.dumps({"operations": [{"operationId": "op-old-1", "cardId": "c-old-1",
                                         "details": {"status": "DATA_PREPARED", "issuerRequestId": "REQ-old-1"}}]})


def old_outbox(path: Path, version: int) -> Path:
    """An outbox at schema ``version``: one settled run, one delivery of card ``c-old-1`` with
    one 204 attempt (columns every version has)."""
    db = Database(path, Schema("outbox", SCHEMA.migrations[:version]))
    with db.transaction():
        db.execute("INSERT INTO runs (id, created, name, target, options, status) VALUES "
                   "(?, '2025-01-01T00:00:00+00:00', 'happy-path', 'http://127.0.0.1:9/hook', "
                   "'{\"issuer_id\": \"ISSUER0001\"}', 'done')", (OLD_RUN,))
        db.execute("INSERT INTO deliveries (run_id, seq, due, key, body, card_ids, statuses, correlation_id, "
                   "scenario, state, last_status) VALUES (?, 1, 0.5, 'c-old-1', ?, '[\"c-old-1\"]', "
                   "'[\"DATA_PREPARED\"]', 'corr-old-1', 'happy-path', 'delivered', 204)", (OLD_RUN, OLD_BODY))
        db.execute("INSERT INTO attempts (delivery_id, number, started_at, status_code, latency_ms, response) "
                   "VALUES (1, 1, 1.7e9, 204, 2.0, X'')")
    db.close()
    return path
