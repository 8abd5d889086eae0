"""The durable outbox: runs, their planned deliveries and every attempt, in one SQLite file.

Every planned delivery is stored before the first is sent, so a killed run resumes with exactly
what is still owed. One thread writes (the sender's scheduler); readers (CLI, UI) open their own
``Outbox`` on the same file, which WAL mode lets them do while a run is being written.

Example::

    >>> from d1sim.contracts.scenario.timeline import Delivery
    >>> box = Outbox(":memory:")
    >>> run = box.create_run("happy", "http://localhost/", {"concurrency": 4})
    >>> box.add_deliveries(run, [Delivery(1, 0.0, b"{}", ("c1",), ("DATA_PREPARED",),
    ...                                   "corr-1", "happy", "c1")])
    1
    >>> [d.delivery.seq for d in box.owed(run)], box.summary(run)
    ([1], {'pending': 1, 'delivered': 0, 'dead': 0})
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.auth import scrub_secrets
from d1sim.simulator.errors import UsageError

DEFAULT_PATH = Path(".d1sim/d1sim.db")
RUN_STATUSES = ("planning", "ready", "running", "interrupted", "done")
SCHEMA_VERSION = 1
STATES = ("pending", "delivered", "dead")
RESPONSE_EXCERPT = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, name TEXT NOT NULL, target TEXT NOT NULL,
    options TEXT NOT NULL, fingerprint TEXT, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL,
    due REAL NOT NULL, key TEXT NOT NULL, body BLOB NOT NULL, card_ids TEXT NOT NULL,
    statuses TEXT NOT NULL, correlation_id TEXT NOT NULL, scenario TEXT NOT NULL, fault TEXT,
    state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER, last_error TEXT, next_attempt_at REAL, UNIQUE (run_id, seq));
CREATE INDEX IF NOT EXISTS deliveries_owed ON deliveries (run_id, state, due, seq);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY, delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
    number INTEGER NOT NULL, started_at REAL NOT NULL, status_code INTEGER,
    latency_ms REAL NOT NULL, response BLOB NOT NULL, error TEXT, warning TEXT);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts (delivery_id, number);
"""
_DELIVERY_COLUMNS = (
    "id, run_id, seq, due, key, body, card_ids, statuses, correlation_id, scenario, fault, "
    "state, attempts, last_status, last_error, next_attempt_at"
)
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (run_id, seq, due, key, body, card_ids, statuses, correlation_id, "
    "scenario, fault) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The number counts every attempt ever made, so a requeued delivery's history stays ordered.
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (delivery_id, number, started_at, status_code, latency_ms, response, "
    "error, warning) VALUES (?, (SELECT COUNT(*) + 1 FROM attempts WHERE delivery_id = ?), "
    "?, ?, ?, ?, ?, ?)"
)
_UPDATE_DELIVERY = (
    "UPDATE deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?, state = ?, "
    "next_attempt_at = ? WHERE id = ?"
)


@dataclass(frozen=True, slots=True)
class Run:
    """One simulation run: what was planned against which target, and how far it got."""

    id: str
    created: str
    name: str
    target: str
    options: dict[str, Any]
    fingerprint: str | None
    status: str

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Run:
        return cls(row[0], row[1], row[2], row[3], orjson.loads(row[4]), row[5], row[6])


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST of a delivery; ``number`` is assigned by the outbox when it is recorded."""

    started_at: float  # Unix time
    status_code: int | None  # None: timeout or connection error, see ``error``
    latency_ms: float
    response: bytes = b""  # the first RESPONSE_EXCERPT bytes of the answer
    error: str | None = None
    warning: str | None = None
    number: int = 0

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Attempt:
        number, started, status, latency, response, error, warning = row
        return cls(started, status, latency, bytes(response), error, warning, number)


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """A planned delivery as stored: its outbox id, state and retry bookkeeping."""

    id: int
    run_id: str
    delivery: Delivery
    state: str = "pending"
    attempts: int = 0  # since it was (re)queued: what the retry budget counts
    last_status: int | None = None
    last_error: str | None = None
    next_attempt_at: float | None = None  # Unix time of a scheduled retry
    history: tuple[Attempt, ...] = ()

    @classmethod
    def from_row(cls, row: tuple[Any, ...], history: tuple[Attempt, ...] = ()) -> StoredDelivery:
        delivery = Delivery(
            seq=row[2],
            due=row[3],
            key=row[4],
            body=bytes(row[5]),
            card_ids=tuple(orjson.loads(row[6])),
            statuses=tuple(orjson.loads(row[7])),
            correlation_id=row[8],
            scenario=row[9],
            fault=row[10],
        )
        state, attempts, last_status, last_error, next_attempt_at = row[11:16]
        return cls(
            row[0],
            row[1],
            delivery,
            state,
            attempts,
            last_status,
            last_error,
            next_attempt_at,
            history,
        )


AttemptRow = tuple[int, Attempt, str, float | None]


class Outbox:
    """A SQLite store of runs, deliveries and attempts (``:memory:`` works for tests)."""

    def __init__(self, path: str | Path = DEFAULT_PATH) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        self._lock = threading.RLock()
        self._depth = 0
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # One connection guarded by a lock: methods may be called from any thread.
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._open()
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the outbox {path}: {exc}") from None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode loses at most the last commits on power loss, never consistency.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise UsageError(f"{self.path}: outbox schema version {version} is not supported")
        if version == 0:
            script = f"BEGIN; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
            self._db.executescript(script)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one commit; nested uses join the outer transaction."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")

    # -- runs ---------------------------------------------------------------------------------

    def create_run(
        self, name: str, target: str, options: Mapping[str, Any], fingerprint: str | None = None
    ) -> str:
        """Start a run (status ``planning``); secret-looking option values are never stored."""
        created = datetime.now(UTC)
        blob = orjson.dumps(scrub_secrets(options), default=str).decode()
        with self.transaction():
            while True:
                run_id = f"r-{created:%Y%m%d}-{secrets.token_hex(3)}"
                if not self._db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                    break
            self._db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, 'planning')",
                (run_id, created.isoformat(timespec="seconds"), name, target, blob, fingerprint),
            )
        return run_id

    def set_run_status(self, run_id: str, status: str) -> None:
        """Record a run's status: planning, ready, running, interrupted or done."""
        with self.transaction():
            self._db.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id))

    def run(self, run_id: str) -> Run | None:
        """One run, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return Run.from_row(row) if row else None

    def runs(self) -> list[Run]:
        """Every run, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM runs ORDER BY created DESC, rowid DESC")
            return [Run.from_row(row) for row in rows]

    def find_run(self, name: str, target: str, fingerprint: str | None) -> str | None:
        """The newest unfinished, fully planned run of the same command, to resume it."""
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM runs WHERE name = ? AND target = ? AND fingerprint IS ? "
                "AND status IN ('ready', 'running', 'interrupted') "
                "ORDER BY created DESC, rowid DESC LIMIT 1",
                (name, target, fingerprint),
            ).fetchone()
        return row[0] if row else None

    # -- deliveries ---------------------------------------------------------------------------

    def add_deliveries(self, run_id: str, deliveries: Iterable[Delivery], batch: int = 1000) -> int:
        """Store planned deliveries in chunked transactions; the run becomes ``ready`` at the end.

        A run killed while planning stays ``planning`` and is never resumed half-planned.
        """
        count, stream = 0, iter(deliveries)
        while chunk := list(islice(stream, batch)):
            rows = [
                (
                    run_id,
                    d.seq,
                    d.due,
                    d.key,
                    d.body,
                    orjson.dumps(d.card_ids).decode(),
                    orjson.dumps(d.statuses).decode(),
                    d.correlation_id,
                    d.scenario,
                    d.fault,
                )
                for d in chunk
            ]
            with self.transaction():
                self._db.executemany(_INSERT_DELIVERY, rows)
            count += len(rows)
        self.set_run_status(run_id, "ready")
        return count

    def owed(
        self,
        run_id: str,
        chunk: int = 1000,
        limit: int | None = None,
    ) -> Iterator[StoredDelivery]:
        """Pending deliveries in (due, seq) order, read ``chunk`` rows at a time, at most ``limit``.

        Paging is by key (due, seq), so rows settled meanwhile never shift or repeat the stream.
        """
        after: tuple[float, int] = (float("-inf"), -1)
        remaining = limit if limit is not None else -1
        while remaining != 0:
            size = chunk if remaining < 0 else min(chunk, remaining)
            with self._lock:
                rows = self._db.execute(
                    f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE run_id = ? AND "
                    "state = 'pending' AND (due, seq) > (?, ?) ORDER BY due, seq LIMIT ?",
                    (run_id, *after, size),
                ).fetchall()
            yield from map(StoredDelivery.from_row, rows)
            if len(rows) < size:
                return
            after, remaining = (rows[-1][3], rows[-1][2]), remaining - len(rows)

    def deliveries(
        self, run_id: str, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[StoredDelivery]:
        """One page of a run's deliveries in seq order, optionally of one state."""
        where, args = "run_id = ?", [run_id]
        if state is not None:
            where, args = where + " AND state = ?", [*args, state]
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE {where} ORDER BY seq "
                "LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return [StoredDelivery.from_row(row) for row in rows]

    def delivery(self, delivery_id: int) -> StoredDelivery | None:
        """One delivery with its attempts in ``history``, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?",
                (delivery_id,),
            ).fetchone()
            attempts = self._db.execute(
                "SELECT number, started_at, status_code, latency_ms, response, error, warning "
                "FROM attempts WHERE delivery_id = ? ORDER BY number",
                (delivery_id,),
            ).fetchall()
        if row is None:
            return None
        return StoredDelivery.from_row(row, tuple(Attempt.from_row(a) for a in attempts))

    def summary(self, run_id: str) -> dict[str, int]:
        """Count of a run's deliveries per state (every state present)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM deliveries WHERE run_id = ? GROUP BY state", (run_id,)
            )
            counts = dict(rows.fetchall())
        return {state: counts.get(state, 0) for state in STATES}

    def final_statuses(self, run_id: str) -> dict[int | None, int]:
        """How many of a run's settled deliveries ended on each HTTP status (None: no answer)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT last_status, COUNT(*) FROM deliveries WHERE run_id = ? AND state != 'pending' "
                "GROUP BY last_status",
                (run_id,),
            )
            return dict(rows.fetchall())

    # -- attempts and states ------------------------------------------------------------------

    def record_attempt(
        self,
        delivery_id: int,
        attempt: Attempt,
        state: str = "pending",
        next_attempt_at: float | None = None,
    ) -> None:
        """Store one attempt and the delivery's resulting state in a single transaction."""
        self.record_attempts([(delivery_id, attempt, state, next_attempt_at)])

    def record_attempts(self, rows: Iterable[AttemptRow]) -> None:
        """Store many (delivery id, attempt, resulting state, next attempt at) in one commit."""
        rows = list(rows)
        with self.transaction():
            self._db.executemany(
                _INSERT_ATTEMPT,
                [
                    (
                        i,
                        i,
                        a.started_at,
                        a.status_code,
                        a.latency_ms,
                        a.response[:RESPONSE_EXCERPT],
                        a.error,
                        a.warning,
                    )
                    for i, a, _, _ in rows
                ],
            )
            self._db.executemany(
                _UPDATE_DELIVERY,
                [(a.status_code, a.error, _checked(state), at, i) for i, a, state, at in rows],
            )

    def mark_delivered(self, delivery_id: int) -> None:
        """Settle a delivery as delivered."""
        self._set_state(delivery_id, "delivered")

    def mark_dead(self, delivery_id: int) -> None:
        """Settle a delivery as a dead letter."""
        self._set_state(delivery_id, "dead")

    def requeue(self, delivery_id: int) -> StoredDelivery:
        """Make a delivery owed again with a fresh retry budget (its history is kept)."""
        with self.transaction():
            changed = self._db.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = NULL "
                "WHERE id = ?",
                (delivery_id,),
            ).rowcount
        stored = self.delivery(delivery_id)
        if not changed or stored is None:
            raise UsageError(f"no delivery with id {delivery_id} in {self.path or ':memory:'}")
        return stored

    def _set_state(self, delivery_id: int, state: str) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE deliveries SET state = ?, next_attempt_at = NULL WHERE id = ?",
                (_checked(state), delivery_id),
            )


def _checked(state: str) -> str:
    if state not in STATES:
        raise ValueError(f"unknown delivery state {state!r}; expected one of {STATES}")
    return state
