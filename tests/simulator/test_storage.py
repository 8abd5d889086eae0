"""The one SQLite layer: checkpoints moved off the committing thread while a sender works."""

from __future__ import annotations

import time
from pathlib import Path

from d1sim.simulator.storage import Database, Schema

BLOBS = Schema("blobs", ("CREATE TABLE blobs (data BLOB NOT NULL);",))


def write(db: Database, megabytes: int) -> None:
    with db.transaction():
        db.executemany("INSERT INTO blobs VALUES (?)", [(b"x" * 4000,) for _ in range(megabytes * 256)])


def wait_for(check: object, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_commits_leave_checkpoints_to_a_thread_of_their_own(tmp_path: Path) -> None:
    db = Database(tmp_path / "d.db", BLOBS)
    file = tmp_path / "d.db"
    try:
        write(db, 2)  # about 500 pages: under SQLite's 1,000, so no commit copies them over
        assert file.stat().st_size < 1_000_000
        with db.checkpoints_aside(interval=0.05):
            assert db.fetchone("PRAGMA wal_autocheckpoint") == (0,)
            write(db, 1)
            assert wait_for(lambda: file.stat().st_size > 2_500_000), "no checkpoint came"
        assert db.fetchone("PRAGMA wal_autocheckpoint") == (1000,)
        assert db.fetchone("SELECT COUNT(*) FROM blobs") == (768,)
    finally:
        db.close()


def test_a_memory_database_has_nothing_to_checkpoint() -> None:
    db = Database(":memory:", BLOBS)
    with db.checkpoints_aside():
        write(db, 1)
    assert db.fetchone("SELECT COUNT(*) FROM blobs") == (256,)


def test_checkpoints_made_elsewhere_leave_this_connection_only_appending(tmp_path: Path) -> None:
    db = Database(tmp_path / "d.db", BLOBS)
    file = tmp_path / "d.db"
    try:
        with db.checkpoints_aside(elsewhere=True):
            assert db.fetchone("PRAGMA wal_autocheckpoint") == (0,)
            write(db, 6)  # 1,500 pages: past SQLite's 1,000, and still nothing copied into the file
            time.sleep(0.3)
            assert file.stat().st_size < 1_000_000
        assert db.fetchone("PRAGMA wal_autocheckpoint") == (1000,)
        write(db, 1)  # the next commit past 1,000 pages copies them over again
        assert file.stat().st_size > 6_000_000
    finally:
        db.close()


def test_a_wal_written_all_the_time_stays_bounded(tmp_path: Path) -> None:
    db = Database(tmp_path / "d.db", BLOBS)
    wal = tmp_path / "d.db-wal"
    biggest = 0
    try:
        with db.checkpoints_aside(interval=0.01, restart_frames=256):  # 1 MiB
            for _ in range(600):  # 600 commits of 16 pages, a millisecond apart: 40 MB through the WAL
                with db.transaction():
                    db.executemany("INSERT INTO blobs VALUES (?)", [(b"x" * 4000,)] * 16)
                biggest = max(biggest, wal.stat().st_size)
                time.sleep(0.001)
        assert db.fetchone("SELECT COUNT(*) FROM blobs") == (9600,)
    finally:
        db.close()
    assert biggest < 12_000_000  # started over again and again, not one 40 MB file
