"""The reference receiver's durable state: one SQLite database, safe to share between threads.

Three tables: ``operations`` (every distinct operation received, keyed by the hash of its
canonical JSON, which is how duplicates are recognised), ``cards`` (per card, the operation held
under the convergence rule) and ``counters`` (request statistics).

Example::

    >>> store = ReceiverStore()
    >>> op = {"operationId": "o", "operation": "PRODUCE", "status": "PENDING", "cardId": "c",
    ...       "startTime": "2025-01-17T06:28:02Z", "details": {"status": "DATA_PREPARED"}}
    >>> store.apply([op, op])
    1
    >>> store.probe("c")
    {'cardId': 'c', 'status': 'DATA_PREPARED'}
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from d1sim.contracts.lifecycle import Lifecycle, load_lifecycle
from d1sim.contracts.lifecycle.convergence import CardState, order_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    digest  TEXT PRIMARY KEY,
    card_id TEXT,
    status  TEXT,
    body    BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_by_card ON operations (card_id);
CREATE TABLE IF NOT EXISTS cards (card_id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

COUNTERS = ("posts", "operations", "rejected", "faulted")


def digest(op: Mapping[str, Any]) -> str:
    """The identity of an operation: SHA-256 of its canonical JSON (keys sorted at every level)."""
    return hashlib.sha256(orjson.dumps(op, option=orjson.OPT_SORT_KEYS)).hexdigest()


class ReceiverStore:
    """Held card states, received operations and counters in SQLite.

    One connection guarded by a lock: waitress serves requests from several threads, and a
    notification's operations must be applied as one transaction.
    """

    def __init__(self, path: str = ":memory:", model: Lifecycle | None = None) -> None:
        self.model = model or load_lifecycle()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        if path != ":memory:":
            # WAL lets a reader (sqlite3 shell, a test) look at the file while we write.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def apply(self, operations: Sequence[Mapping[str, Any]]) -> int:
        """Record and apply one notification's operations atomically; return how many were new."""
        new = 0
        with self._lock, self._db:
            self._bump("operations", len(operations))
            for op in operations:
                if self._record(op):
                    new += 1
                    self._converge(op)
        return new

    def _record(self, op: Mapping[str, Any]) -> bool:
        details = op.get("details")
        status = details.get("status") if isinstance(details, Mapping) else None
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO operations (digest, card_id, status, body) VALUES (?, ?, ?, ?)",
            (digest(op), op.get("cardId"), status, orjson.dumps(op)),
        )
        return cursor.rowcount == 1

    def _tracked(self, op: Mapping[str, Any]) -> bool:
        """True for a PRODUCE operation with a known status: only those may move a card's state."""
        details = op.get("details")
        return (
            op.get("operation") == self.model.operation
            and isinstance(details, Mapping)
            and isinstance(details.get("status"), str)
            and self.model.is_known(details["status"])
        )

    def _converge(self, op: Mapping[str, Any]) -> None:
        if not self._tracked(op):
            return  # unknown statuses are recorded, never held: they cannot be ranked
        row = self._db.execute(
            "SELECT body FROM cards WHERE card_id = ?", (op["cardId"],)
        ).fetchone()
        if row is None or order_key(op, self.model) > order_key(orjson.loads(row[0]), self.model):
            self._db.execute(
                "INSERT OR REPLACE INTO cards (card_id, body) VALUES (?, ?)",
                (op["cardId"], orjson.dumps(op)),
            )

    def held(self, card_id: str) -> CardState | None:
        """The state held for ``card_id``; None when no known status was received for it."""
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM cards WHERE card_id = ?", (card_id,)
            ).fetchone()
        if row is None:
            return None
        op = orjson.loads(row[0])
        shipment = op["details"].get("shipment")
        return CardState(
            card_id,
            op["details"]["status"],
            shipment if isinstance(shipment, Mapping) else None,
            op["operationId"],
        )

    def probe(self, card_id: str) -> dict[str, Any] | None:
        """The state-probe body for ``card_id`` (``{"cardId", "status"[, "shipment"]}``) or None."""
        state = self.held(card_id)
        return state.as_probe() if state else None

    def statuses_seen(self, card_id: str) -> list[str]:
        """Every distinct details.status received for ``card_id``, known or not, sorted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT status FROM operations WHERE card_id = ? AND status IS NOT NULL "
                "ORDER BY status",
                (card_id,),
            ).fetchall()
        return [status for (status,) in rows]

    def count(self, name: str, by: int = 1) -> None:
        """Add ``by`` to the counter ``name`` (one of COUNTERS)."""
        with self._lock, self._db:
            self._bump(name, by)

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def stats(self) -> dict[str, int]:
        """Counters plus ``distinct_operations`` and ``cards`` (cards with a held state)."""
        with self._lock:
            counted = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
            distinct = self._db.execute("SELECT COUNT(*) FROM operations").fetchone()[0]
            cards = self._db.execute("SELECT COUNT(*) FROM cards").fetchone()[0]
        stats = {name: int(counted.get(name, 0)) for name in COUNTERS}
        return {**stats, "distinct_operations": distinct, "cards": cards}

    def reset(self) -> None:
        """Forget every card, operation and counter."""
        with self._lock, self._db:
            for table in ("operations", "cards", "counters"):
                self._db.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()
