"""Read-only queries the UI runs on an outbox database (a replay's, or ``d1sim serve``'s).

Every page is one or two indexed queries: runs are counted per state on the outbox's
``(run_id, state, ...)`` index, a run's deliveries are paged by key on ``(run_id, seq)``, a
card's deliveries are found in ``delivery_terms`` (files of an older d1sim: a scan). The
connection is opened ``mode=ro``: the UI can never change what it shows. Tables of the mock D1
(``d1_runs``, ``d1_orders``) and of recorded checks are used when the file has them.

Example::

    >>> reader = OutboxReader(":memory:")
    >>> reader.runs(), reader.has_orders
    ([], False)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from d1sim.simulator.delivery.outbox_records import Headers, headers_from_json
from d1sim.simulator.delivery.terms import MATCHING, indexed, operations, token

PAGE = 50
UI_STATES = ("delivered", "pending", "retrying", "dead")
_COLUMNS = (  # also read by d1sim.simulator.ui.search
    "id, run_id, seq, due, body, card_ids, statuses, correlation_id, scenario, fault, state, "
    "attempts, last_status, last_error, next_attempt_at"
)
# A pending delivery that was tried and is waiting on a backoff is shown as "retrying".
_RETRYING = "state = 'pending' AND (attempts > 0 OR last_status IS NOT NULL OR last_error IS NOT NULL)"
_STATE_WHERE = {
    "delivered": "state = 'delivered'",
    "dead": "state = 'dead'",
    "retrying": _RETRYING,
    "pending": f"state = 'pending' AND NOT ({_RETRYING})",
}
_FAILED = f"(state = 'dead' OR ({_RETRYING}))"
_NAMING = f"id IN ({MATCHING})"  # its argument is terms.token(text); also read by ui.search
# The mock D1 indexes orders by (issuer_id, card_id) and (issuer_id, request_id): naming every
# issuer lets SQLite look each one up instead of scanning the orders.
ANY_ISSUER = "issuer_id IN (SELECT id FROM d1_issuers)"


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as the Runs page lists it."""

    id: str
    created: str
    source: str
    issuer: str
    target: str
    status: str
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One POST of a delivery."""

    number: int
    started_at: float
    status_code: int | None
    latency_ms: float
    response: str
    error: str | None
    warning: str | None
    request_headers: Headers | None = None  # None: recorded before the outbox kept them


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A delivery with what the UI shows of it (``attempts`` filled for one delivery only)."""

    id: int
    run_id: str
    seq: int
    due: float
    body: bytes
    card_ids: tuple[str, ...]
    statuses: tuple[str, ...]
    correlation_id: str
    scenario: str
    fault: str | None
    state: str
    tries: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: float | None
    attempts: tuple[AttemptRow, ...] = field(default=())

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> DeliveryRow:
        state = row[10]
        if state == "pending" and (row[11] or row[12] is not None or row[13] is not None):
            state = "retrying"
        return cls(row[0], row[1], row[2], row[3], bytes(row[4]), tuple(orjson.loads(row[5])),
                   tuple(orjson.loads(row[6])), row[7], row[8], row[9], state, *row[11:15])

    def operations(self) -> list[dict[str, Any]]:
        """The operations in the body (none when it is not the usual JSON)."""
        return operations(self.body)


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to ``path`` (``:memory:`` gives an empty private database)."""
    if str(path) == ":memory:":
        return sqlite3.connect(":memory:", check_same_thread=False)
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=5000")
    return db


class OutboxReader:
    """The UI's queries over one database file; one reader per request thread."""

    def __init__(self, path: str | Path) -> None:
        self.db = open_readonly(path)
        names = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.has_outbox = "deliveries" in names
        self.has_orders = "d1_orders" in names and "d1_runs" in names
        self.has_checks = "d1sim_checks" in names
        self.has_terms = indexed(self.db)  # else an older file (or no FTS5): bodies are scanned
        # Files of an older d1sim open read-only, unmigrated: their attempts have no headers.
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(attempts)")}
        self._headers_column = "request_headers" if "request_headers" in columns else "NULL"

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    # -- runs -------------------------------------------------------------------------------

    def runs(self, limit: int = PAGE, offset: int = 0) -> list[RunRow]:
        """A page of runs, newest first, with their delivery counts."""
        if not self.has_outbox:
            return []
        issuer = "(SELECT issuer_id FROM d1_runs WHERE d1_runs.run_id = runs.id)" if self.has_orders else "NULL"
        rows = self.db.execute(
            f"SELECT id, created, name, target, status, options, {issuer} FROM runs "
            "ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        return [self._run_row(row) for row in rows]

    def run(self, run_id: str) -> RunRow | None:
        """One run, or None."""
        if not self.has_outbox:
            return None
        issuer = "(SELECT issuer_id FROM d1_runs WHERE d1_runs.run_id = runs.id)" if self.has_orders else "NULL"
        row = self.db.execute(
            f"SELECT id, created, name, target, status, options, {issuer} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return self._run_row(row) if row else None

    def _run_row(self, row: Sequence[Any]) -> RunRow:
        run_id, created, name, target, status, options, issuer = row
        if issuer is None:
            opts = orjson.loads(options) if options else {}
            issuer = opts.get("issuerId") or opts.get("issuer_id") or ""
        return RunRow(run_id, _rfc3339(created), name, str(issuer), target, status, self.counts(run_id))

    def run_settings(self, run_id: str) -> tuple[dict[str, Any], float | None]:
        """What a run's POSTs were sent with (issuer settings or run options) and its virtual start."""
        if self.has_orders:
            row = self.db.execute(
                "SELECT i.settings, r.start FROM d1_runs r JOIN d1_issuers i ON i.id = r.issuer_id "
                "WHERE r.run_id = ?", (run_id,)).fetchone()
            if row:
                return orjson.loads(row[0]), row[1]
        row = self.db.execute("SELECT options FROM runs WHERE id = ?", (run_id,)).fetchone()
        return (orjson.loads(row[0]) if row else {}), None

    def counts(self, run_id: str) -> dict[str, int]:
        """Deliveries per UI state: delivered, pending, retrying, dead."""
        by_state = dict(self.db.execute(
            "SELECT state, COUNT(*) FROM deliveries WHERE run_id = ? GROUP BY state", (run_id,)
        ).fetchall())
        retrying = self.db.execute(
            f"SELECT COUNT(*) FROM deliveries WHERE run_id = ? AND {_RETRYING}", (run_id,)
        ).fetchone()[0]
        return {
            "delivered": by_state.get("delivered", 0),
            "pending": by_state.get("pending", 0) - retrying,
            "retrying": retrying,
            "dead": by_state.get("dead", 0),
        }

    # -- deliveries ---------------------------------------------------------------------------

    def deliveries(
        self, run_id: str, *, state: str | None = None, status: str | None = None,
        after: int = 0, limit: int = PAGE,
    ) -> list[DeliveryRow]:
        """A page of a run's deliveries after seq ``after`` (keyset), filtered by state/status."""
        where, args = ["run_id = ?", "seq > ?"], [run_id, after]
        if state:
            where.append(_STATE_WHERE[state])
        where, args = _status_filter(where, args, status)
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [DeliveryRow.from_row(row) for row in rows]

    def delivery(self, delivery_id: int) -> DeliveryRow | None:
        """One delivery with every attempt."""
        if not self.has_outbox:
            return None
        row = self.db.execute(f"SELECT {_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        if row is None:
            return None
        return _with_attempts(DeliveryRow.from_row(row), self._attempts([delivery_id])[delivery_id])

    def _attempts(self, ids: Sequence[int]) -> dict[int, list[AttemptRow]]:
        found: dict[int, list[AttemptRow]] = {i: [] for i in ids}
        marks = ",".join("?" * len(ids))
        for row in self.db.execute(
            "SELECT delivery_id, number, started_at, status_code, latency_ms, response, error, warning, "
            f"{self._headers_column} FROM attempts WHERE delivery_id IN ({marks}) ORDER BY delivery_id, number",
            tuple(ids),
        ):
            response = bytes(row[5]).decode("utf-8", "replace")
            found[row[0]].append(AttemptRow(row[1], row[2], row[3], row[4], response, row[6], row[7],
                                            headers_from_json(row[8])))
        return found

    def card_deliveries(self, card_id: str, limit: int = 500) -> list[DeliveryRow]:
        """Every delivery carrying ``card_id``, with attempts, in (run, seq) order."""
        if not self.has_outbox or not card_id:
            return []
        where, args = self._carrying(card_id)
        if self.has_orders:  # the mock D1 runs one order per run: its deliveries are the card's
            orders = f"SELECT run_id FROM d1_orders WHERE {ANY_ISSUER} AND card_id = ?"
            where, args = f"(run_id IN ({orders}) OR {where})", [card_id, *args]
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE {where} ORDER BY run_id, seq LIMIT ?", (*args, limit)
        ).fetchall()
        items = [DeliveryRow.from_row(row) for row in rows]
        attempts = self._attempts([i.id for i in items]) if items else {}
        return [_with_attempts(i, attempts[i.id]) for i in items]

    def _carrying(self, card_id: str) -> tuple[str, list[Any]]:
        needle = orjson.dumps(card_id).decode()  # the id as a JSON string, quotes included
        if not self.has_terms:
            return "instr(card_ids, ?) > 0", [needle]
        # The index finds the deliveries naming the text; card_ids confirms it is a card id there.
        return f"({_NAMING} AND instr(card_ids, ?) > 0)", [token(card_id), needle]

    def failures(
        self, *, issuer: str | None = None, run_id: str | None = None, status: str | None = None,
        before: int | None = None, limit: int = PAGE,
    ) -> list[DeliveryRow]:
        """Dead and retrying deliveries, newest first, paged by id (keyset ``before``)."""
        if not self.has_outbox:
            return []
        where: list[str] = [_FAILED]
        args: list[Any] = []
        if before is not None:
            where, args = [*where, "id < ?"], [*args, before]
        if run_id:
            where, args = [*where, "run_id = ?"], [*args, run_id]
        if issuer:
            where, args = [*where, self._issuer_where()], [*args, *[issuer] * (3 if self.has_orders else 2)]
        where, args = _status_filter(where, args, status)
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [DeliveryRow.from_row(row) for row in rows]

    def _issuer_where(self) -> str:
        d1 = "run_id IN (SELECT run_id FROM d1_runs WHERE issuer_id = ?) OR " if self.has_orders else ""
        return (f"({d1}run_id IN (SELECT id FROM runs WHERE json_extract(options, '$.issuerId') = ? "
                "OR json_extract(options, '$.issuer_id') = ?))")

    def issuers(self) -> list[str]:
        """Issuer ids with runs (the mock D1's), for the Failures filter."""
        if not self.has_orders:
            return []
        return [r[0] for r in self.db.execute("SELECT DISTINCT issuer_id FROM d1_runs ORDER BY 1")]


def _rfc3339(stored: str) -> str:
    """The outbox's ``...+00:00`` creation time written as RFC 3339 with ``Z``."""
    return stored.replace("+00:00", "Z")


def _status_filter(where: list[str], args: list[Any], status: str | None) -> tuple[list[str], list[Any]]:
    if not status:
        return where, args
    if status == "none":  # no answer at all: timeout or connection error
        return [*where, "last_status IS NULL AND last_error IS NOT NULL"], args
    return [*where, "last_status = ?"], [*args, int(status)]


def _with_attempts(item: DeliveryRow, attempts: list[AttemptRow]) -> DeliveryRow:
    return replace(item, attempts=tuple(attempts))
