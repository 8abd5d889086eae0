"""One run, one sender: a run being sent holds a lease in the outbox, renewed by a heartbeat.

A second sender on the same run (the same ``replay`` started twice, ``--resume`` of a live run)
is refused while the lease is alive, so nothing is sent twice by two live senders. A lease ends
when its sender finishes, when its heartbeat stops for ``ttl`` seconds, or at once when its
sender's process is gone from this machine (after a SIGKILL): then the run can be resumed.

Example::

    with RunLease(outbox, run_id):  # raises RunBusy while another sender holds the run
        ...  # send; the run is "running", then "done" (or "interrupted" on an exception)

A run still being planned while it is sent keeps the status ``planning`` until its plan is
complete, so that a run interrupted then is resumed by planning the rest.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Protocol

from d1sim.simulator.errors import UsageError
from d1sim.simulator.storage import Database


class LeasedStore(Protocol):
    """What a lease needs of the outbox (a protocol, so the outbox can import this module)."""

    db: Database

    def transaction(self) -> AbstractContextManager[None]: ...

LEASE_SECONDS = 15.0  # a sender silent this long is taken for dead (another machine, a freeze)
HEARTBEATS_PER_LEASE = 3


class RunBusy(UsageError):
    """Another live sender holds the run."""


def owner_id() -> str:
    """Who holds a lease: host, process id, and a token telling two senders of one process apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def holder_alive(owner: str | None) -> bool:
    """False when ``owner`` ran on this machine and its process is gone; else True (unknown)."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, owned by someone else
        return True
    return True


def lease_alive(owner: str | None, expires: float | None, now: float) -> bool:
    """Whether a recorded lease still holds its run."""
    return owner is not None and expires is not None and expires > now and holder_alive(owner)


class RunLease:
    """Holds ``run_id`` for this sender while in the ``with`` block, with a heartbeat thread."""

    def __init__(self, outbox: LeasedStore, run_id: str, *, ttl: float = LEASE_SECONDS,
                 clock: Callable[[], float] = time.time, marks: bool = True) -> None:
        self.outbox, self.run_id, self.ttl, self.clock = outbox, run_id, ttl, clock
        self.marks = marks  # set the run's status (running, then done/interrupted); not for a resend
        self.owner = owner_id()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="d1sim-lease", daemon=True)

    def __enter__(self) -> RunLease:
        self.take()
        self._beat.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._beat.join(self.ttl)
        self.release(("done" if kind is None else "interrupted") if self.marks else None)

    def take(self) -> None:
        """Take the run (status ``running``), or raise RunBusy naming the live holder."""
        db, now = self.outbox.db, self.clock()
        with self.outbox.transaction():
            row = db.fetchone("SELECT lease_owner, lease_expires FROM runs WHERE id = ?", (self.run_id,))
            if row is not None and lease_alive(row[0], row[1], now):
                raise RunBusy(
                    f"run {self.run_id} is being sent right now by another d1sim ({row[0]}); "
                    "two senders would deliver it twice. Wait for that one to finish or stop it; "
                    f"a sender that was killed frees the run at once on this machine, or "
                    f"{self.ttl:g} s after its last heartbeat elsewhere"
                )
            db.execute(
                "UPDATE runs SET lease_owner = ?, lease_expires = ?, "
                "status = CASE WHEN ? AND status != 'planning' THEN 'running' ELSE status END "
                "WHERE id = ?",
                (self.owner, now + self.ttl, int(self.marks), self.run_id),
            )

    def renew(self) -> bool:
        """Push the expiry on; False if the lease was lost meanwhile."""
        changed = self.outbox.db.execute(
            "UPDATE runs SET lease_expires = ? WHERE id = ? AND lease_owner = ?",
            (self.clock() + self.ttl, self.run_id, self.owner),
        ).rowcount
        return changed == 1

    def release(self, status: str | None) -> None:
        """Give the run up with its final status (``done``, ``interrupted``; None: unchanged)."""
        self.outbox.db.execute(
            "UPDATE runs SET lease_owner = NULL, lease_expires = NULL, status = CASE WHEN "
            "status = 'planning' THEN status ELSE COALESCE(?, status) END WHERE id = ? AND lease_owner = ?",
            (status, self.run_id, self.owner),
        )

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / HEARTBEATS_PER_LEASE):
            try:
                if not self.renew():
                    return
            except Exception:  # the outbox closed under us: the run is ending anyway
                return
