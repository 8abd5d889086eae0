"""The mock D1's own state in SQLite: issuers and their clocks, inbound clients and tokens,
orders, and which outbox runs the server drives.

The tables live beside the outbox's (same file by default), prefixed ``d1_``; the outbox keeps
deliveries and attempts. Client secrets and access tokens are stored as SHA-256 hashes only:
the database never holds a credential the issuer's backend sends. Issuer settings do hold the
secrets D1 needs to call the webhook (it has to send them); answers never show them.

Example::

    >>> store = Store(":memory:")
    >>> store.add_client("ISSUER0001", "bank", "pa55word-long")
    >>> store.client_issuer("bank", "pa55word-long"), store.client_issuer("bank", "wrong")
    ('ISSUER0001', None)
"""

from __future__ import annotations

import hashlib
import hmac
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from d1sim.simulator.storage import Database, Schema

SCHEMA = Schema("d1", ("""
CREATE TABLE IF NOT EXISTS d1_issuers (
    id TEXT PRIMARY KEY, settings BLOB NOT NULL, virtual REAL NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS d1_clients (
    client_id TEXT PRIMARY KEY, issuer_id TEXT NOT NULL, secret_hash TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS d1_tokens (
    token_hash TEXT PRIMARY KEY, issuer_id TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS d1_orders (
    operation_id TEXT PRIMARY KEY, issuer_id TEXT NOT NULL, card_id TEXT NOT NULL,
    request_id TEXT, scenario TEXT NOT NULL, seed INTEGER NOT NULL, start REAL NOT NULL,
    created REAL NOT NULL, run_id TEXT, canceled INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS d1_orders_request ON d1_orders (issuer_id, request_id);
CREATE INDEX IF NOT EXISTS d1_orders_card ON d1_orders (issuer_id, card_id, created);
CREATE TABLE IF NOT EXISTS d1_runs (
    run_id TEXT PRIMARY KEY, issuer_id TEXT NOT NULL, start REAL NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0);
""",))
_ORDER_COLUMNS = "operation_id, issuer_id, card_id, request_id, scenario, seed, start, created, run_id, canceled"


def digest(secret: str) -> str:
    """The stored form of a client secret or token."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuerRecord:
    """A registered issuer: its raw settings (with secrets), clock reading and pause flag."""

    issuer_id: str
    settings: dict[str, Any]
    virtual: float
    paused: bool

    def __repr__(self) -> str:
        return f"IssuerRecord({self.issuer_id!r}, paused={self.paused})"


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One accepted production order; ``start`` is on the issuer's virtual clock (Unix s)."""

    operation_id: str
    issuer_id: str
    card_id: str
    request_id: str | None
    scenario: str
    seed: int
    start: float
    created: float
    run_id: str | None = None
    canceled: bool = False

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> OrderRecord:
        operation_id, issuer_id, card_id, request_id, scenario, seed, start, created, run_id = row[:9]
        return cls(
            operation_id,
            issuer_id,
            card_id,
            request_id,
            scenario,
            seed,
            start,
            created,
            run_id,
            bool(row[9]),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "operationId": self.operation_id,
            "issuerId": self.issuer_id,
            "cardId": self.card_id,
            "issuerRequestId": self.request_id,
            "scenario": self.scenario,
            "seed": self.seed,
            "runId": self.run_id,
            "canceled": self.canceled,
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    """An outbox run the server delivers: whose, and the virtual time its ``due`` counts from."""

    run_id: str
    issuer_id: str
    start: float
    finished: bool


class Store:
    """The server's tables; every method may be called from any thread."""

    def __init__(self, path: str | Path) -> None:
        self.db = Database(path, SCHEMA, label="mock D1 store")

    def close(self) -> None:
        self.db.close()

    def batch(self) -> AbstractContextManager[None]:
        """Group writes into one commit."""
        return self.db.transaction()

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        self.db.execute(sql, args)

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.db.fetchall(sql, args)

    # -- issuers ------------------------------------------------------------------------------

    def put_issuer(self, issuer_id: str, settings: dict[str, Any], virtual: float) -> bool:
        """Store settings; a new issuer's clock starts at ``virtual``. True if it was new."""
        blob = orjson.dumps(settings)
        with self.db.transaction():
            cursor = self.db.execute("UPDATE d1_issuers SET settings = ? WHERE id = ?", (blob, issuer_id))
            if cursor.rowcount:
                return False
            self.db.execute(
                "INSERT INTO d1_issuers VALUES (?, ?, ?, 0, ?)",
                (issuer_id, blob, virtual, time.time()),
            )
            return True

    def issuers(self) -> list[IssuerRecord]:
        """Every issuer, by id."""
        rows = self._all("SELECT id, settings, virtual, paused FROM d1_issuers ORDER BY id")
        return [IssuerRecord(r[0], orjson.loads(r[1]), r[2], bool(r[3])) for r in rows]

    def save_clock(self, issuer_id: str, virtual: float, paused: bool) -> None:
        """Remember an issuer's clock reading and pause flag (a restart resumes from them)."""
        self._run(
            "UPDATE d1_issuers SET virtual = ?, paused = ? WHERE id = ?",
            (virtual, int(paused), issuer_id),
        )

    # -- inbound clients and tokens -----------------------------------------------------------

    def add_client(self, issuer_id: str, client_id: str, secret: str) -> None:
        """Register (or replace) an inbound client of ``issuer_id``."""
        self._run(
            "INSERT OR REPLACE INTO d1_clients VALUES (?, ?, ?, ?)",
            (client_id, issuer_id, digest(secret), time.time()),
        )

    def client_issuer(self, client_id: str, secret: str) -> str | None:
        """The issuer of a client whose secret matches, else None."""
        rows = self._all("SELECT issuer_id, secret_hash FROM d1_clients WHERE client_id = ?", (client_id,))
        if rows and hmac.compare_digest(rows[0][1], digest(secret)):
            return str(rows[0][0])
        return None

    def clients(self, issuer_id: str) -> list[str]:
        """The client ids of an issuer."""
        rows = self._all("SELECT client_id FROM d1_clients WHERE issuer_id = ? ORDER BY created", (issuer_id,))
        return [r[0] for r in rows]

    def add_token(self, token: str, issuer_id: str, expires: float) -> None:
        """Remember an issued access token (hashed) until ``expires`` (Unix s)."""
        with self.db.transaction():
            self.db.execute("DELETE FROM d1_tokens WHERE expires < ?", (time.time(),))
            self.db.execute("INSERT INTO d1_tokens VALUES (?, ?, ?)", (digest(token), issuer_id, expires))

    def token(self, token: str) -> tuple[str, float] | None:
        """(issuer id, expiry) of a token ever issued and not yet purged, else None."""
        rows = self._all("SELECT issuer_id, expires FROM d1_tokens WHERE token_hash = ?", (digest(token),))
        return (rows[0][0], rows[0][1]) if rows else None

    # -- orders -------------------------------------------------------------------------------

    def add_order(self, order: OrderRecord) -> OrderRecord:
        """Store an order; with an issuerRequestId seen before, return that earlier order."""
        with self.db.transaction():
            if order.request_id is not None:
                earlier = self.order_for_request(order.issuer_id, order.request_id)
                if earlier is not None:
                    return earlier
            self.db.execute(
                f"INSERT INTO d1_orders ({_ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*_order_row(order)[:9], int(order.canceled)),
            )
            return order

    def order_for_request(self, issuer_id: str, request_id: str) -> OrderRecord | None:
        """The order an issuerRequestId made, if any."""
        return self._one_order("issuer_id = ? AND request_id = ?", (issuer_id, request_id))

    def order(self, operation_id: str) -> OrderRecord | None:
        """One order by its operationId."""
        return self._one_order("operation_id = ?", (operation_id,))

    def latest_order(self, issuer_id: str, card_id: str) -> OrderRecord | None:
        """The card's newest order."""
        return self._one_order("issuer_id = ? AND card_id = ? ORDER BY created DESC, rowid DESC", (issuer_id, card_id))

    def card_orders(self, issuer_id: str, card_id: str) -> list[OrderRecord]:
        """Every order of a card, oldest first."""
        return self._orders("issuer_id = ? AND card_id = ? ORDER BY created, rowid", (issuer_id, card_id))

    def orders(self, issuer_id: str | None = None, limit: int = 100, offset: int = 0) -> list[OrderRecord]:
        """One page of orders, newest first, optionally of one issuer."""
        where, args = ("issuer_id = ?", (issuer_id,)) if issuer_id else ("1", ())
        return self._orders(f"{where} ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?", (*args, limit, offset))

    def unplanned_orders(self) -> list[OrderRecord]:
        """Orders accepted but not yet planned into the outbox (a restart plans them)."""
        return self._orders("run_id IS NULL ORDER BY created, rowid", ())

    def set_order_run(self, operation_id: str, run_id: str) -> None:
        self._run("UPDATE d1_orders SET run_id = ? WHERE operation_id = ?", (run_id, operation_id))

    def mark_canceled(self, operation_id: str) -> None:
        self._run("UPDATE d1_orders SET canceled = 1 WHERE operation_id = ?", (operation_id,))

    def _one_order(self, where: str, args: tuple[Any, ...]) -> OrderRecord | None:
        rows = self._orders(f"{where} LIMIT 1" if "LIMIT" not in where else where, args)
        return rows[0] if rows else None

    def _orders(self, where: str, args: tuple[Any, ...]) -> list[OrderRecord]:
        rows = self._all(f"SELECT {_ORDER_COLUMNS} FROM d1_orders WHERE {where}", args)
        return [OrderRecord.from_row(r) for r in rows]

    # -- runs ---------------------------------------------------------------------------------

    def add_run(self, run_id: str, issuer_id: str, start: float) -> None:
        """Record that the server delivers ``run_id`` to ``issuer_id`` from virtual ``start``."""
        self._run("INSERT OR IGNORE INTO d1_runs VALUES (?, ?, ?, 0)", (run_id, issuer_id, start))

    def set_finished(self, run_id: str, finished: bool) -> None:
        self._run("UPDATE d1_runs SET finished = ? WHERE run_id = ?", (int(finished), run_id))

    def runs(self, issuer_id: str | None = None, active: bool = False) -> list[RunRecord]:
        """The server's runs (optionally one issuer's, or only the unfinished ones)."""
        args: tuple[Any, ...] = ()
        where = "1"
        if issuer_id:
            where, args = "issuer_id = ?", (issuer_id,)
        if active:
            where += " AND finished = 0"
        rows = self._all(
            f"SELECT run_id, issuer_id, start, finished FROM d1_runs WHERE {where} ORDER BY rowid",
            args,
        )
        return [RunRecord(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def run(self, run_id: str) -> RunRecord | None:
        rows = self._all("SELECT run_id, issuer_id, start, finished FROM d1_runs WHERE run_id = ?", (run_id,))
        return RunRecord(rows[0][0], rows[0][1], rows[0][2], bool(rows[0][3])) if rows else None


def _order_row(order: OrderRecord) -> tuple[Any, ...]:
    return (
        order.operation_id,
        order.issuer_id,
        order.card_id,
        order.request_id,
        order.scenario,
        order.seed,
        order.start,
        order.created,
        order.run_id,
        order.canceled,
    )
