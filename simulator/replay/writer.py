"""The replay's writer process: plans a run, stores it and commits the sender's attempts.

A replay's sending process spends about half of each POST's time in SQLite (storing the plan,
recording answers) when it writes the outbox itself. During a streamed replay (time scale 0, a
file outbox) a second process does all of that, on the second core: it expands the scenario,
stores each part of the plan in one commit and hands it over (ids included), and commits the
attempt rows the sender hands back, saying which hand-over is committed so the sender releases
each key's next delivery only then (:class:`d1sim.simulator.delivery.driver.Recorder`).

It is a plain ``python -m d1sim.simulator.replay.writer_entry`` process (see
:func:`d1sim.simulator.lifeline.spawn`): the plan it is given must pickle (a module-level
function, or a ``functools.partial`` of one). It ignores Ctrl-C: the sender decides when to stop,
and the writer first commits every row it was handed. It ends with its parent.

Example::

    writer = Writer(Path("o.db"), run_id, partial(planned_deliveries, scenario, seed=1), after=-1)
    part = writer.part()          # stored deliveries, None (none yet) or DONE
    ticket = writer.record(rows)  # attempt rows to commit
    writer.committed(timeout=1.0) >= ticket
    writer.close()

A command that will most likely stream a plan starts the process first thing (see
:mod:`d1sim.simulator.replay.ahead` and :func:`started_ahead`), so its start-up (an interpreter,
the expansion's imports) overlaps the command's own; the first :class:`Writer` takes it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from d1sim.contracts.scenario.source import ScenarioError
from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.outbox import AttemptFields, AttemptRow, Outbox, StoredDelivery, attempt_fields
from d1sim.simulator.delivery.outbox_records import delivery_fields
from d1sim.simulator.errors import UsageError
from d1sim.simulator.lifeline import exit_with_parent, spawn
from d1sim.simulator.replay import ahead

# Deliveries per part: one outbox commit and one pipe message each. Small, because the rows the
# sender hands over while a part is stored wait for it (a key's next delivery waits for them).
HAND_OVER = 100
# The longest planning goes on without committing the rows the sender handed over meanwhile.
SERVE_EVERY = 0.001
# Parts planned ahead of what the sender has taken: bounds the memory a plan of any size holds.
AHEAD = 20
# How long the writer gets to commit what it was handed once the sender is done with it.
STOP_SECONDS = 10.0
DONE = object()
_FAILED = object()  # planning raised (the sender was told)

Plan = Callable[[], Iterable[Delivery]]


@contextmanager
def started_ahead(start: bool = True) -> Iterator[None]:
    """Within the block, the first :class:`Writer` takes a writer process started ahead: one the
    command line started (:mod:`d1sim.simulator.replay.ahead`), else one started now (if
    ``start``). One not taken by the end of the block is let go."""
    if start:
        ahead.start()
    try:
        yield
    finally:
        ahead.release()


def remaining(deliveries: Iterable[Delivery], after: int) -> Iterator[Delivery]:
    """The deliveries of a plan not stored yet: those after ``seq`` ``after`` (a plan is in seq order)."""
    return (d for d in deliveries if d.seq > after)


class Writer:
    """The writer process seen from the sender: parts of the plan in, attempt rows out.

    No thread here: every call first takes what the writer has said (parts, commits), so its
    pipe is drained as often as the sender calls, and the sender's thread never competes for
    the GIL with a reader. Raises OSError when the process cannot start, and pickle's errors
    when ``plan`` cannot travel; :meth:`part`, :meth:`record` and :meth:`committed` raise
    UsageError once the writer has failed (what it said) or is gone.
    """

    def __init__(self, path: Path, run_id: str, plan: Plan, after: int) -> None:
        self.run_id = run_id
        child = ahead.take() or spawn(ahead.MODULE)
        self.process, self.inbox, self.said = child.process, child.inbox, child.said
        self.parts: deque[list[StoredDelivery] | object] = deque()
        self.ticket = self.acked = 0
        self.failure: str | None = None
        self.planning_failure: str | None = None
        try:
            self.inbox.send({"path": str(path), "run_id": run_id, "plan": plan, "after": after,
                             "parent": os.getpid()})
        except BaseException:
            self.close()
            raise

    # -- the plan ----------------------------------------------------------------------------

    def part(self) -> list[StoredDelivery] | object | None:
        """The next stored part, None if none is ready yet, or DONE once the plan is complete."""
        self._hear(0)
        if not self.parts:
            if self.planning_failure is not None:
                raise UsageError(self.planning_failure)
            self._check()
            return None
        got = self.parts.popleft()
        if got is not DONE:
            self._send(("more", 1))  # room for one more part ahead
        return got

    # -- the recorder (d1sim.simulator.delivery.driver.Recorder) -------------------------------

    def record(self, rows: list[AttemptRow]) -> int:
        """Hand attempt rows over to be committed together; their ticket."""
        self.ticket += 1
        self._send(("rows", self.ticket, [attempt_fields(row) for row in rows]))
        return self.ticket

    def committed(self, timeout: float = 0.0) -> int:
        """The last ticket committed; waits up to ``timeout`` seconds for a newer one if some
        are outstanding."""
        seen = self.acked
        self._hear(0)
        if timeout and seen == self.acked < self.ticket:
            until = time.monotonic() + timeout
            while seen == self.acked and self.failure is None and (left := until - time.monotonic()) > 0:
                self._hear(left)
        self._check()
        return self.acked

    # -- the process ---------------------------------------------------------------------------

    def close(self) -> None:
        """Let the writer commit what it was handed and end (stopped after STOP_SECONDS)."""
        with contextlib.suppress(OSError):
            self.inbox.close()  # end of input: the writer commits what it holds, then exits
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(STOP_SECONDS)
        self.said.close()

    def _check(self) -> None:
        if self.failure is not None:
            raise UsageError(self.failure)

    def _send(self, message: object) -> None:
        try:
            self.inbox.send(message)
        except OSError:  # gone: what it said last tells why
            self._hear(STOP_SECONDS)
            self._check()
            raise UsageError("the replay's writer process is gone") from None

    def _hear(self, timeout: float) -> None:
        """Take every message the writer has said; wait up to ``timeout`` seconds for the first."""
        while self.failure is None and self.said.poll(timeout):
            timeout = 0
            try:
                kind, payload = self.said.recv()
            except (EOFError, OSError):
                try:
                    code: int | str = self.process.wait(STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    code = "none yet"
                self.failure = (f"the replay's writer process stopped unexpectedly (exit code {code}); "
                                "nothing committed was lost: run the same command again to resume")
                return
            except Exception as exc:  # a message cut short (an interrupt while it was read)
                self.failure = f"the replay's writer process cannot be heard ({type(exc).__name__}: {exc})"
                return
            if kind == "part":
                first, fields = payload
                self.parts.append([StoredDelivery(first + n, self.run_id, Delivery(*f)) for n, f in enumerate(fields)])
            elif kind == "planned":
                self.parts.append(DONE)
            elif kind == "committed":
                self.acked = payload
            elif kind == "plan-error":
                self.planning_failure = payload
            else:  # "error": the writer cannot go on
                self.failure = payload


# -- the writer process ------------------------------------------------------------------------


def writer_main(inbox: Connection, said: Connection) -> int:
    """The writer process: take the setup, then plan and commit until the sender is done."""
    try:
        setup = inbox.recv()
    except EOFError:  # let go before any work
        return 0
    except Exception as exc:  # a plan that pickled there but cannot be loaded here
        with contextlib.suppress(OSError):
            said.send(("error", f"the replay's writer process cannot load its plan: {type(exc).__name__}: {exc}"))
        return 1
    exit_with_parent(setup["parent"])
    try:
        with Outbox(setup["path"]) as outbox:
            serving = _Serving(outbox, setup["run_id"], inbox, said)
            planning = serving.planned(lambda: iter(remaining(setup["plan"](), setup["after"])))
            with outbox.db.checkpoints_aside():  # here, not in the sending process
                serving.run(None if planning is _FAILED else planning)
        return 0
    except Exception as exc:  # an outbox that cannot be written (disk full, removed, ...), or a bug
        what = "the outbox cannot be written" if isinstance(exc, sqlite3.Error | UsageError) else \
            "the replay's writer process failed"
        with contextlib.suppress(OSError):
            said.send(("error", f"{what}: {type(exc).__name__}: {exc}; nothing committed was lost: "
                                "run the same command again to resume"))
        return 1


class _Serving:
    """The writer's loop: commit what the sender hands over first, plan in between.

    A key's next delivery waits for its previous answer's commit, so rows are never held up by
    planning for more than about SERVE_EVERY.
    """

    def __init__(self, outbox: Outbox, run_id: str, inbox: Connection, said: Connection) -> None:
        self.outbox, self.run_id, self.inbox, self.said = outbox, run_id, inbox, said
        self.room = AHEAD  # parts the sender has room for
        self.open = True  # False once the sender is done with this process

    def run(self, planning: Iterator[Delivery] | None) -> None:
        while self.open:
            self._commit(wait=planning is None or self.room == 0)
            if planning is not None and self.room > 0 and self.open:
                planning = self._plan_part(planning)

    def _commit(self, wait: bool) -> None:
        """Take every message waiting (wait for the first if ``wait``); commit the rows handed
        over in one transaction and say which ticket that was."""
        rows: list[AttemptFields] = []
        ticket = 0
        while self.inbox.poll(None if wait else 0):
            try:
                message = self.inbox.recv()
            except EOFError:
                self.open = False
                break
            if message[0] == "rows":
                ticket = message[1]
                rows.extend(message[2])
            else:  # "more"
                self.room += message[1]
            wait = False
        if rows:
            self.outbox.record_fields(rows)
            self.said.send(("committed", ticket))

    def planned(self, work: Callable[[], Any]) -> Any:
        """``work()`` (expanding the plan), or _FAILED after telling the sender why it failed."""
        try:
            return work()
        except ScenarioError as exc:
            self.said.send(("plan-error", str(exc)))
        except Exception as exc:  # said by the sender, which stops the run (what is stored stays)
            self.said.send(("plan-error", f"planning failed: {type(exc).__name__}: {exc}"))
        return _FAILED

    def _plan_part(self, planning: Iterator[Delivery]) -> Iterator[Delivery] | None:
        """Expand, store and hand over one part; None once the plan is complete or failed."""
        part = self._expand(planning)
        if part is None or not self.open:
            return None
        if part:
            first = self.outbox.store_planned(self.run_id, part)[0].id
            self.said.send(("part", (first, [delivery_fields(d) for d in part])))
            self.room -= 1
        if len(part) < HAND_OVER:
            self.outbox.finish_planning(self.run_id)
            self.said.send(("planned", None))
            return None
        return planning

    def _expand(self, planning: Iterator[Delivery]) -> list[Delivery] | None:
        """Up to HAND_OVER deliveries (None: planning failed), committing what arrives every
        SERVE_EVERY meanwhile (an outbox error there is no planning error: it ends the writer)."""
        part: list[Delivery] = []
        served = time.perf_counter()
        while len(part) < HAND_OVER:
            delivery = self.planned(lambda: next(planning, None))
            if delivery is _FAILED:
                return None
            if delivery is None:
                break
            part.append(delivery)
            if time.perf_counter() - served > SERVE_EVERY:
                self._commit(wait=False)
                if not self.open:
                    break
                served = time.perf_counter()
        return part
