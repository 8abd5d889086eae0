"""One SQLite layer for every store d1sim keeps: the outbox, the mock D1's tables, the receiver's.

:class:`Database` opens a file (or ``:memory:``) the same way for all of them: one connection
shared by threads under a lock, WAL with ``synchronous=NORMAL`` (a reader never waits for the
writer; a power loss can lose the last commits, never consistency), a busy timeout for other
processes, nestable transactions, and versioned migrations. Several components may share one
file (the mock D1 keeps its tables beside the outbox's): each records its own schema version in
the ``d1sim_schema`` table, and a file written by a newer d1sim is refused, never half-read.

Example::

    >>> notes = Schema("notes", ("CREATE TABLE notes (text TEXT NOT NULL);",
    ...                          "ALTER TABLE notes ADD COLUMN author TEXT;"))
    >>> db = Database(":memory:", notes)
    >>> with db.transaction():
    ...     _ = db.execute("INSERT INTO notes VALUES ('hi', 'me')")
    >>> db.fetchall("SELECT text, author FROM notes"), db.version("notes")
    ([('hi', 'me')], 2)
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d1sim.simulator.errors import UsageError

MEMORY = ":memory:"
BUSY_TIMEOUT_MS = 5000
# SQLite's default: a commit checkpoints once the WAL holds this many pages.
AUTOCHECKPOINT_PAGES = 1000
# How often a checkpoint thread (see Database.checkpoints_aside) copies the WAL into the file.
CHECKPOINT_SECONDS = 0.2
# A busy writer's WAL (a replay's writer commits every few milliseconds) is started over once it
# holds this many pages (64 MiB), and cut back to WAL_BYTES if it grew past it: one that grew to
# 400 MB cost 0.4 s to remove or cut (its pages still in the page cache) at the end of a replay.
RESTART_FRAMES, WAL_BYTES = 16384, 64 << 20
_VERSIONS = "CREATE TABLE IF NOT EXISTS d1sim_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"


Migration = str | Callable[[sqlite3.Connection], None]
"""An SQL script, or a function of the connection for a step SQL cannot say (a backfill)."""


@dataclass(frozen=True, slots=True)
class Schema:
    """A component's tables as migrations: the i-th step brings version i to version i+1.

    Steps are applied in one transaction with the version bump, so a crash mid-migration
    leaves the previous version whole. Never edit a released step: append a new one.
    """

    component: str
    migrations: tuple[Migration, ...]

    @property
    def version(self) -> int:
        """The version this d1sim writes."""
        return len(self.migrations)


class Database:
    """A tuned SQLite connection, safe to share between threads, with migrations applied.

    Raises UsageError (with ``label`` and the path) when the file cannot be opened or was
    written by a newer d1sim.
    """

    def __init__(self, path: str | Path, *schemas: Schema, label: str = "database") -> None:
        self.path = None if str(path) == MEMORY else Path(path)
        self.lock = threading.RLock()
        self._depth = 0
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._tune()
            for schema in schemas:
                self._migrate(schema, label)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the {label} {path}: {exc}") from None

    def _tune(self) -> None:
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_BYTES}")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def _migrate(self, schema: Schema, label: str) -> None:
        self._db.execute(_VERSIONS)
        with self.transaction():  # IMMEDIATE: two processes opening a new file migrate once
            found = self.version(schema.component)
            if found > schema.version:
                raise UsageError(
                    f"{label} {self.path}: {schema.component} schema version {found} was written "
                    f"by a newer d1sim (this one knows up to {schema.version})"
                )
            for step in schema.migrations[found:]:
                if callable(step):
                    step(self._db)
                    continue
                for statement in _statements(step):
                    self._db.execute(statement)
            if found < schema.version:
                self._db.execute(
                    "INSERT OR REPLACE INTO d1sim_schema VALUES (?, ?)", (schema.component, schema.version)
                )

    def version(self, component: str) -> int:
        """The schema version ``component`` has in this file (0: not created yet)."""
        row = self.fetchone("SELECT version FROM d1sim_schema WHERE component = ?", (component,))
        return int(row[0]) if row else 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one commit; nested uses join the outer transaction."""
        with self.lock:
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

    def execute(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Run one statement (its own commit unless inside :meth:`transaction`)."""
        with self.lock:
            return self._db.execute(sql, tuple(args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run one statement per row; return how many rows it changed."""
        with self.lock:
            before = self._db.total_changes
            self._db.executemany(sql, rows)
            return self._db.total_changes - before

    def fetchone(self, sql: str, args: Iterable[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        with self.lock:
            row = self._db.execute(sql, tuple(args)).fetchone()
        return tuple(row) if row is not None else None

    def fetchall(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        with self.lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self._db.close()

    @contextmanager
    def checkpoints_aside(self, interval: float = CHECKPOINT_SECONDS, *, elsewhere: bool = False,
                          restart_frames: int = RESTART_FRAMES) -> Iterator[None]:
        """Within the block, copy the WAL into the file from a thread of its own (``elsewhere``:
        another process does, and this connection only stops checkpointing).

        SQLite otherwise checkpoints inside a COMMIT once the WAL passes 1,000 pages, and that
        commit then waits for the copy and two fsyncs: a sender's thread stalls with every
        connection idle. Here commits only append to the WAL, and a thread with its own
        connection checkpoints every ``interval`` seconds (``sqlite3`` releases the GIL while it
        works, and a PASSIVE checkpoint never blocks a writer). A writer that commits all the
        time never leaves PASSIVE the moment to start the WAL over, so once it holds
        ``restart_frames`` pages a RESTART checkpoint copies the rest while writers wait a few
        milliseconds: the file stays bounded (it grew to 400 MB in a replay of 50,000 POSTs,
        without bound on larger ones). Other connections to the file (a replay's sender
        processes) may switch their own checkpoints off meanwhile with :meth:`leave_checkpoints`.
        Nothing to do for ``:memory:``.
        """
        if self.path is None:
            yield
            return
        stop = threading.Event()
        worker = None if elsewhere else threading.Thread(
            target=_checkpoint_every, args=(self.path, interval, stop, restart_frames),
            name="d1sim-checkpoint", daemon=True)
        self.leave_checkpoints()
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                stop.set()
                worker.join(BUSY_TIMEOUT_MS / 1000 + interval)
            with self.lock:
                self._db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")

    def leave_checkpoints(self) -> None:
        """This connection's commits no longer checkpoint (another connection does)."""
        with self.lock:
            self._db.execute("PRAGMA wal_autocheckpoint=0")


def _checkpoint_every(path: Path, interval: float, stop: threading.Event, restart_frames: int) -> None:
    try:
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return  # the WAL grows until the block ends and commits checkpoint again
    try:
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        while not stop.wait(interval):
            with contextlib.suppress(sqlite3.Error):  # busy now: the next round copies it
                _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames > restart_frames:
                    # Writers never leave a PASSIVE checkpoint the moment to start the WAL over:
                    # copy the rest while they wait (a few milliseconds), so the file stops growing.
                    db.execute("PRAGMA wal_checkpoint(RESTART)")
        with contextlib.suppress(sqlite3.Error):
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        db.close()


def _statements(script: str) -> Iterator[str]:
    """The complete SQL statements of a script (semicolons inside triggers stay inside)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                yield pending.strip()
            pending = ""
