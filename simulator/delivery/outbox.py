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
import time
from collections.abc import Collection, Generator, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery import terms
from d1sim.simulator.delivery.auth import scrub_secrets
from d1sim.simulator.delivery.lease import lease_alive
from d1sim.simulator.delivery.outbox_records import (
    RESPONSE_EXCERPT,
    Attempt,
    AttemptRow,
    Headers,
    Run,
    StoredDelivery,
    headers_to_json,
)
from d1sim.simulator.errors import UsageError
from d1sim.simulator.redaction import mask_attempt, mask_value, strip_userinfo
from d1sim.simulator.storage import Database, Schema

DEFAULT_PATH = Path(".d1sim/d1sim.db")
RUN_STATUSES = ("planning", "ready", "running", "interrupted", "done")
STATES = ("pending", "delivered", "dead")

# Version 1 is the table layout of d1sim 0.x (created with IF NOT EXISTS: files made before
# versions were recorded here adopt it unchanged).
SCHEMA = Schema("outbox", ("""
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
""", """
ALTER TABLE runs ADD COLUMN lease_owner TEXT;
ALTER TABLE runs ADD COLUMN lease_expires REAL;
""", """
ALTER TABLE attempts ADD COLUMN request_headers TEXT;
""", terms.backfill))
# 2: the sender's lease on a run (simulator.delivery.lease); 3: each attempt's headers, masked;
# 4: the ids a delivery carries, indexed for search and card timelines (simulator.delivery.terms)
_RUN_COLUMNS = "id, created, name, target, options, fingerprint, status, lease_owner, lease_expires"
_DELIVERY_COLUMNS = (
    "id, run_id, seq, due, key, body, card_ids, statuses, correlation_id, scenario, fault, "
    "state, attempts, last_status, last_error, next_attempt_at"
)
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, run_id, seq, due, key, body, card_ids, statuses, correlation_id, "
    "scenario, fault) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The number counts every attempt ever made, so a requeued delivery's history stays ordered.
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (delivery_id, number, started_at, status_code, latency_ms, response, "
    "error, warning, request_headers) VALUES (?, (SELECT COUNT(*) + 1 FROM attempts WHERE delivery_id = ?), "
    "?, ?, ?, ?, ?, ?, ?)"
)
# Ever handed to the sender: settled, tried (the budget resets on requeue, the last answer not).
_SENT = "(state != 'pending' OR attempts > 0 OR last_status IS NOT NULL OR last_error IS NOT NULL)"
_UPDATE_DELIVERY = (
    "UPDATE deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?, state = ?, "
    "next_attempt_at = ? WHERE id = ?"
)




class Outbox:
    """A SQLite store of runs, deliveries and attempts (``:memory:`` works for tests)."""

    def __init__(self, path: str | Path = DEFAULT_PATH) -> None:
        # One connection guarded by a lock: methods may be called from any thread.
        self.db = Database(path, SCHEMA, label="outbox")
        self.path = self.db.path
        # A file migrated by an SQLite without FTS5 has no index; one that has it is kept whole.
        self._indexed = self.db.fetchone(
            "SELECT 1 FROM sqlite_master WHERE name = 'delivery_terms'") is not None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def transaction(self) -> AbstractContextManager[None]:
        """Group writes into one commit; nested uses join the outer transaction."""
        return self.db.transaction()

    # -- runs ---------------------------------------------------------------------------------

    def create_run(
        self, name: str, target: str, options: Mapping[str, Any], fingerprint: str | None = None
    ) -> str:
        """Start a run (status ``planning``); secret-looking option values are never stored."""
        created = datetime.now(UTC)
        target, blob = strip_userinfo(target), orjson.dumps(mask_value(scrub_secrets(options)), default=str).decode()
        with self.transaction():
            while True:
                run_id = f"r-{created:%Y%m%d}-{secrets.token_hex(3)}"
                if not self.db.fetchone("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
                    break
            self.db.execute(
                "INSERT INTO runs (id, created, name, target, options, fingerprint, status) "
                "VALUES (?, ?, ?, ?, ?, ?, 'planning')",
                (run_id, created.isoformat(timespec="seconds"), name, target, blob, fingerprint),
            )
        return run_id

    def set_run_status(self, run_id: str, status: str) -> None:
        """Record a run's status: planning, ready, running, interrupted or done."""
        self.db.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id))

    def run(self, run_id: str) -> Run | None:
        """One run, or None."""
        row = self.db.fetchone(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return _shown(Run.from_row(row), time.time()) if row else None

    def status(self, run_id: str) -> str:
        """A run's status as :meth:`run` shows it; UsageError naming the run if there is none."""
        run = self.run(run_id)
        if run is None:
            raise UsageError(f"no run {run_id} in {self.path or ':memory:'}")
        return run.status

    def runs(self) -> list[Run]:
        """Every run, newest first; a run whose sender is gone shows as ``interrupted``."""
        rows = self.db.fetchall(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created DESC, rowid DESC")
        now = time.time()
        return [_shown(Run.from_row(row), now) for row in rows]

    def find_run(self, name: str, target: str, fingerprint: str | None) -> str | None:
        """The newest unfinished, fully planned run of the same command, to resume it."""
        row = self.db.fetchone(
            "SELECT id FROM runs WHERE name = ? AND target = ? AND fingerprint IS ? "
            "AND status IN ('ready', 'running', 'interrupted') "
            "ORDER BY created DESC, rowid DESC LIMIT 1",
            (name, strip_userinfo(target), fingerprint),
        )
        return row[0] if row else None

    # -- deliveries ---------------------------------------------------------------------------

    def add_deliveries(self, run_id: str, deliveries: Iterable[Delivery], batch: int = 1000,
                       *, complete: bool = True) -> int:
        """Store planned deliveries in chunked transactions; the run becomes ``ready`` at the end.

        ``complete=False`` stores one part of a plan that goes on (see :meth:`finish_planning`).
        A run killed while planning stays ``planning``; what it stored is kept.
        """
        count, stream = 0, iter(deliveries)
        while chunk := list(islice(stream, batch)):
            with self.transaction():
                self._insert_deliveries(run_id, chunk)
            count += len(chunk)
        if complete:
            self.finish_planning(run_id)
        return count

    def store_planned(self, run_id: str, deliveries: list[Delivery],
                      tokens: list[str] | None = None) -> list[StoredDelivery]:
        """Store one part of a plan that goes on, in one commit; returned as stored, with ids.

        ``tokens``: each delivery's search index text (:func:`terms.tokens`), if computed ahead.
        """
        with self.transaction():
            first = self._insert_deliveries(run_id, deliveries, tokens)
        return [StoredDelivery(first + n, run_id, d) for n, d in enumerate(deliveries)]

    def _insert_deliveries(self, run_id: str, deliveries: list[Delivery],
                           tokens: list[str] | None = None) -> int:
        """Insert within the caller's transaction (the write lock: nobody else takes ids
        meanwhile); ids are given here, from the returned one on, so the terms can name them."""
        row = self.db.fetchone("SELECT COALESCE(MAX(id), 0) FROM deliveries")
        first = (row[0] if row else 0) + 1
        self.db.executemany(_INSERT_DELIVERY, [
            (first + n, run_id, d.seq, d.due, d.key, d.body, orjson.dumps(d.card_ids).decode(),
             orjson.dumps(d.statuses).decode(), d.correlation_id, d.scenario, d.fault)
            for n, d in enumerate(deliveries)
        ])
        if self._indexed:
            self.db.executemany(terms.INSERT, terms.index_rows(
                (first + n, d.card_ids, d.body) for n, d in enumerate(deliveries)) if tokens is None
                else [(first + n, text) for n, text in enumerate(tokens)])
        return first

    def finish_planning(self, run_id: str) -> None:
        """Every delivery of the run is stored: ``ready``, or ``running`` if a sender holds it."""
        self.db.execute(
            "UPDATE runs SET status = CASE WHEN lease_owner IS NULL THEN 'ready' ELSE 'running' END "
            "WHERE id = ? AND status = 'planning'", (run_id,))

    def last_planned(self, run_id: str) -> int:
        """The highest ``seq`` stored for the run (-1: none): a plan resumes after it."""
        row = self.db.fetchone("SELECT MAX(seq) FROM deliveries WHERE run_id = ?", (run_id,))
        return -1 if row is None or row[0] is None else int(row[0])

    def owed_after(self, run_id: str, seq: int, limit: int = 1000, upto: int | None = None) -> list[StoredDelivery]:
        """Pending deliveries with a ``seq`` above ``seq`` (and at most ``upto``), in planning
        order, at most ``limit``."""
        rows = self.db.fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE run_id = ? AND seq > ? AND seq <= COALESCE(?, seq) "
            "AND state = 'pending' ORDER BY seq LIMIT ?", (run_id, seq, upto, limit))
        return [StoredDelivery.from_row(row) for row in rows]

    def owed(
        self,
        run_id: str,
        chunk: int = 1000,
        limit: int | None = None,
    ) -> Generator[StoredDelivery, None, None]:
        """Pending deliveries in (due, seq) order, read ``chunk`` rows at a time, at most ``limit``.

        Paging is by key (due, seq), so rows settled meanwhile never shift or repeat the stream.
        """
        after: tuple[float, int] = (float("-inf"), -1)
        remaining = limit if limit is not None else -1
        while remaining != 0:
            size = chunk if remaining < 0 else min(chunk, remaining)
            rows = self.db.fetchall(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE run_id = ? AND "
                "state = 'pending' AND (due, seq) > (?, ?) ORDER BY due, seq LIMIT ?",
                (run_id, *after, size),
            )
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
        rows = self.db.fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE {where} ORDER BY seq LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [StoredDelivery.from_row(row) for row in rows]

    def delivery(self, delivery_id: int) -> StoredDelivery | None:
        """One delivery with its attempts in ``history``, or None."""
        with self.db.lock:
            row = self.db.fetchone(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,))
            attempts = self.db.fetchall(
                "SELECT number, started_at, status_code, latency_ms, response, error, warning, "
                "request_headers FROM attempts WHERE delivery_id = ? ORDER BY number",
                (delivery_id,),
            )
        if row is None:
            return None
        return StoredDelivery.from_row(row, tuple(Attempt.from_row(a) for a in attempts))

    def summary(self, run_id: str) -> dict[str, int]:
        """Count of a run's deliveries per state (every state present)."""
        counts = dict(self.db.fetchall(
            "SELECT state, COUNT(*) FROM deliveries WHERE run_id = ? GROUP BY state", (run_id,)
        ))
        return {state: counts.get(state, 0) for state in STATES}

    def final_statuses(self, run_id: str) -> dict[int | None, int]:
        """How many of a run's settled deliveries ended on each HTTP status (None: no answer)."""
        return dict(self.db.fetchall(
            "SELECT last_status, COUNT(*) FROM deliveries WHERE run_id = ? AND state != 'pending' "
            "GROUP BY last_status",
            (run_id,),
        ))

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

    def record_attempts(self, rows: Iterable[AttemptRow], *, masked: bool = False) -> None:
        """Store many (delivery id, attempt, resulting state, next attempt at) in one commit.

        An attempt's ``request_headers`` (the pairs the POST carried) are stored with every
        credential masked; leave them None when they are not known. ``masked``: the caller
        has masked each attempt already (:func:`d1sim.simulator.redaction.mask_attempt` with its
        secrets, as the sender's workers do), so it is not done twice.
        """
        rows = list(rows) if masked else [(i, mask_attempt(a), state, at) for i, a, state, at in rows]
        self.record_fields([attempt_fields(row) for row in rows])

    def record_fields(self, rows: list[AttemptFields]) -> None:
        """:meth:`record_attempts` of rows already flattened (and masked) by :func:`attempt_fields`."""
        with self.transaction():
            self.db.executemany(
                _INSERT_ATTEMPT,
                [(i, i, started, status, latency, response[:RESPONSE_EXCERPT], error, warning,
                  headers_to_json(headers)) for i, started, status, latency, response, error, warning, headers, _, _
                 in rows],
            )
            self.db.executemany(
                _UPDATE_DELIVERY,
                [(row[2], row[5], _checked(row[8]), row[9], row[0]) for row in rows],
            )

    def mark_delivered(self, delivery_id: int) -> None:
        """Settle a delivery as delivered."""
        self._set_state(delivery_id, "delivered")

    def mark_dead(self, delivery_id: int) -> None:
        """Settle a delivery as a dead letter."""
        self._set_state(delivery_id, "dead")

    def requeue(self, delivery_id: int) -> StoredDelivery:
        """Make a delivery owed again with a fresh retry budget (its history is kept)."""
        try:
            self.requeue_many([delivery_id])
        except UsageError:
            raise UsageError(f"no delivery with id {delivery_id} in {self.path or ':memory:'}") from None
        stored = self.delivery(delivery_id)
        assert stored is not None  # requeued just now, in this outbox
        return stored

    def requeue_many(self, delivery_ids: Iterable[int]) -> int:
        """Requeue deliveries as :meth:`requeue` does, all in one commit; return how many.

        An id given twice counts once. If any id is not in the outbox none is requeued, and
        the UsageError names the missing ones.
        """
        ids = list(dict.fromkeys(delivery_ids))
        with self.transaction():
            changed = self.db.executemany(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = NULL WHERE id = ?",
                [(i,) for i in ids],
            )
            if changed != len(ids):
                missing = [i for i in ids if self.db.fetchone("SELECT 1 FROM deliveries WHERE id = ?", (i,)) is None]
                raise UsageError(f"no delivery with id {', '.join(map(str, missing))} "
                                 f"in {self.path or ':memory:'}; none requeued")
        return changed

    def _set_state(self, delivery_id: int, state: str) -> None:
        self.db.execute(
            "UPDATE deliveries SET state = ?, next_attempt_at = NULL WHERE id = ?",
            (_checked(state), delivery_id),
        )

    # -- the mock D1's queries: cancel, recover, status polling -------------------------------

    def drop(self, delivery_ids: Iterable[int]) -> int:
        """Delete owed deliveries that were never tried (a cancelled order's future); count them."""
        with self.transaction():
            doomed = [row for i in delivery_ids for row in self.db.fetchall(
                f"SELECT id, card_ids, body FROM deliveries WHERE id = ? AND NOT {_SENT}", (i,))]
            if self._indexed:
                self.db.executemany(terms.DELETE, terms.index_rows(
                    (i, orjson.loads(cards), bytes(body)) for i, cards, body in doomed))
            return self.db.executemany("DELETE FROM deliveries WHERE id = ?", [(row[0],) for row in doomed])

    def next_seq(self, run_id: str) -> int:
        """The seq a delivery appended to ``run_id`` gets."""
        row = self.db.fetchone("SELECT COALESCE(MAX(seq), 0) + 1 FROM deliveries WHERE run_id = ?", (run_id,))
        return int(row[0]) if row else 1

    def sent(self, run_id: str) -> list[StoredDelivery]:
        """A run's deliveries that were ever handed to the sender, in seq order."""
        rows = self.db.fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE run_id = ? AND {_SENT} ORDER BY seq", (run_id,)
        )
        return [StoredDelivery.from_row(row) for row in rows]

    def dead_since(self, since: float, run_ids: Collection[str]) -> list[tuple[str, int]]:
        """(run id, delivery id) of dead deliveries of ``run_ids`` last tried at/after ``since``."""
        return [(r, i) for r, i, at in self._dead(run_ids) if at is not None and at >= since]

    def undelivered(self, run_ids: Collection[str]) -> list[tuple[str, int]]:
        """(run id, delivery id) of deliveries never delivered: dead, or waiting on a backoff."""
        rows = [(r, i) for r, i, _ in self._dead(run_ids)]
        for run_id in run_ids:
            rows += self.db.fetchall(
                "SELECT run_id, id FROM deliveries WHERE run_id = ? AND state = 'pending' "
                "AND next_attempt_at IS NOT NULL",
                (run_id,),
            )
        return rows

    def _dead(self, run_ids: Collection[str]) -> list[tuple[str, int, float | None]]:
        rows: list[tuple[Any, ...]] = []
        for run_id in run_ids:
            rows += self.db.fetchall(
                "SELECT d.run_id, d.id, (SELECT MAX(started_at) FROM attempts a WHERE a.delivery_id = d.id) "
                "FROM deliveries d WHERE d.run_id = ? AND d.state = 'dead' ORDER BY d.seq",
                (run_id,),
            )
        return [(r, i, at) for r, i, at in rows]


AttemptFields = tuple[int, float, int | None, float, bytes, str | None, str | None, Headers | None, str, float | None]
"""An attempt row as plain values (pickled several times faster than the dataclass): delivery
id, started at, status code, latency in ms, response, error, warning, request headers, resulting
state, next attempt at."""


def attempt_fields(row: AttemptRow) -> AttemptFields:
    """One (delivery id, attempt, state, next attempt at) row as plain values."""
    i, a, state, at = row
    return (i, a.started_at, a.status_code, a.latency_ms, a.response[:RESPONSE_EXCERPT], a.error, a.warning,
            a.request_headers, state, at)


def _shown(run: Run, now: float) -> Run:
    """A run marked running whose sender is gone (SIGKILL, power loss) is interrupted."""
    if run.status == "running" and not lease_alive(run.lease_owner, run.lease_expires, now):
        return replace(run, status="interrupted")
    return run


def _checked(state: str) -> str:
    if state not in STATES:
        raise ValueError(f"unknown delivery state {state!r}; expected one of {STATES}")
    return state
