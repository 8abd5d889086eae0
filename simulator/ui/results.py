"""Check outcomes kept in the outbox's database (``d1sim check --db``, ``d1sim demo --db``).

One row per check of a session: its outcome, reason and, for a failure, the minimal example as
the terminal prints it and as JSON. The table is the UI's own (``d1sim_checks``); the outbox's
tables are not touched.

Example::

    >>> from d1sim.contracts.checks import CheckOutcome
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "d1sim.db")
    >>> record_outcomes(path, "check", "http://127.0.0.1:8090/", 7,
    ...                 [CheckOutcome("accepts_batches", "passed", "", examples=5, seconds=0.1)])
    1
    >>> [(r["check_id"], r["outcome"]) for r in read_sessions(path)[0]["checks"]]
    [('accepts_batches', 'passed')]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from d1sim.contracts.checks import CheckOutcome
from d1sim.contracts.payloads.factory import format_time
from d1sim.simulator.errors import UsageError
from d1sim.simulator.reports.check import format_failure

_SCHEMA = """
CREATE TABLE IF NOT EXISTS d1sim_checks (
    id INTEGER PRIMARY KEY, session TEXT NOT NULL, recorded TEXT NOT NULL, command TEXT NOT NULL,
    target TEXT NOT NULL, seed INTEGER, check_id TEXT NOT NULL, outcome TEXT NOT NULL,
    reason TEXT NOT NULL, examples INTEGER NOT NULL, seconds REAL NOT NULL,
    failure_text TEXT, example TEXT);
CREATE INDEX IF NOT EXISTS d1sim_checks_session ON d1sim_checks (session, id);
"""
_COLUMNS = ("id", "session", "recorded", "command", "target", "seed", "check_id", "outcome",
            "reason", "examples", "seconds", "failure_text", "example")


def rfc3339(moment: datetime | float) -> str:
    """``2026-11-29T09:53:38.123Z``: the one way the UI and the admin API write a time."""
    return format_time(moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC))


def record_outcomes(
    path: str | Path, command: str, target: str, seed: int | None, outcomes: Iterable[CheckOutcome]
) -> int:
    """Append one session of check outcomes to the database at ``path``; count the rows.

    Raises:
        UsageError: the database cannot be opened or written.
    """
    now = datetime.now(UTC)
    session = f"{command}-{now:%Y%m%dT%H%M%S%f}"
    rows = [
        (session, rfc3339(now), command, target, seed, o.check_id, o.outcome, o.reason, o.examples,
         round(o.seconds, 3), format_failure(o.failure) if o.failure else None,
         orjson.dumps(o.failure.as_dict(), default=str).decode() if o.failure else None)
        for o in outcomes
    ]
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(str(path)) as db:
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            db.executemany(f"INSERT INTO d1sim_checks ({', '.join(_COLUMNS[1:])}) "
                           f"VALUES ({', '.join('?' * (len(_COLUMNS) - 1))})", rows)
        db.close()
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"--db {path}: cannot record the check results: {exc}") from None
    return len(rows)


def read_sessions(path_or_db: str | Path | sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``limit`` sessions, each ``{session, recorded, command, target, seed, checks}``."""
    db = path_or_db if isinstance(path_or_db, sqlite3.Connection) else sqlite3.connect(str(path_or_db))
    sessions = db.execute(
        "SELECT session FROM d1sim_checks GROUP BY session ORDER BY MAX(id) DESC LIMIT ?", (limit,)
    ).fetchall()
    out = []
    for (session,) in sessions:
        rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM d1sim_checks WHERE session = ? ORDER BY id",
                          (session,)).fetchall()
        checks = [dict(zip(_COLUMNS, row, strict=True)) for row in rows]
        first = checks[0]
        out.append({key: first[key] for key in ("session", "recorded", "command", "target", "seed")}
                   | {"checks": checks})
    if not isinstance(path_or_db, sqlite3.Connection):
        db.close()
    return out
