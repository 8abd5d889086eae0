"""Several sender processes on lanes partitioned by card: the replay's sending on every core.

One sender process spends most of its time in Python and SQLite around each POST, so on a
machine with two cores it leaves one idle. With ``senders`` above 1, the calling process still
plans and stores (see :mod:`d1sim.simulator.replay.planning`), and routes each stored delivery
to one of ``senders`` lane processes by its key (its card, or its card group): a key's
deliveries all go through one lane, in order, so per-card order holds as with one sender. Each
lane runs the usual :class:`d1sim.simulator.delivery.driver.Driver` over libcurl with its share
of the connections (``concurrency`` is the total) and records its attempts through a
connection of its own to the same outbox file (SQLite in WAL mode: one writer at a time, each
commit a group of answers, so the lanes seldom wait for each other).

Lanes are plain ``python -m d1sim.simulator.delivery.lane_entry`` processes, not forks: an SQLite
connection must not cross a fork, and ``multiprocessing``'s spawn would import the user's own
main module again. They end with their parent (:mod:`d1sim.simulator.lifeline`). A small plan
(at most :data:`SMALL` deliveries) is sent in this process, without lanes: starting a process
costs more than it saves there.

Example::

    summary = send_in_lanes(outbox, config, owed, senders=2, pace=pace)  # see engine.deliver_run
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import queue
import random
import signal
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.delivery.driver import (
    STARVED_WAIT,
    DeliveryEvent,
    DeliverySummary,
    Driver,
    Progress,
)
from d1sim.simulator.delivery.libcurl import CurlWorkers
from d1sim.simulator.delivery.outbox import Outbox, StoredDelivery
from d1sim.simulator.delivery.outbox_records import delivery_fields
from d1sim.simulator.delivery.sender import Poster, SenderConfig, client_for
from d1sim.simulator.errors import UsageError
from d1sim.simulator.lifeline import exit_with_parent, spawn

# A plan of at most this many deliveries is sent in the calling process.
SMALL = 500
# Deliveries handed to a lane at once (one pipe message).
HAND = 256
# How long lanes get to record what they have after an interruption before they are stopped.
STOP_SECONDS = 5.0


def lanes_for(config: SenderConfig, senders: int) -> int:
    """How many lanes a run can use: at most one per connection, and a config that can travel."""
    senders = min(senders, config.concurrency)
    if senders < 2:
        return 1
    try:
        pickle.dumps(config)
    except Exception:  # an injected clock or client in the auth: this process sends alone
        return 1
    return senders


def lane_of(key: str, lanes: int) -> int:
    """The lane a key's deliveries go through (stable across processes and runs)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % lanes


def send_in_lanes(
    outbox: Outbox,
    config: SenderConfig,
    owed: Iterator[StoredDelivery | None],
    senders: int,
    alone: Callable[[Iterator[StoredDelivery | None]], DeliverySummary],
    progress: Progress | None = None,
) -> DeliverySummary:
    """Send ``owed`` through ``senders`` lane processes; ``alone`` sends a small plan here instead.

    Returns the lanes' summed counts. Raises what a lane raised (TargetUnreachable, AuthError,
    ...) after stopping the others; what was recorded stays, the rest stays owed.
    """
    assert outbox.path is not None, "lanes need a file outbox"
    started = time.monotonic()
    lanes: list[_Lane] = []
    try:
        for n in range(senders):
            lanes.append(_Lane(n, config, senders, outbox.path, progress is not None))
    except OSError:  # no interpreter to start (an embedded Python): this process sends alone
        for lane in lanes:
            lane.close()
        return alone(owed)
    try:
        first, rest = _peek(owed)
        if rest is None:  # the whole plan is small: starting lanes would cost more than it saves
            for lane in lanes:
                lane.abandon()
            return alone(iter(first))
        summary = _Router(lanes, progress).run(first, rest)
    finally:
        for lane in lanes:
            lane.close()
    summary.elapsed = time.monotonic() - started
    return summary


def _peek(owed: Iterator[StoredDelivery | None]) -> tuple[list[StoredDelivery], Iterator[StoredDelivery | None] | None]:
    """The first deliveries of ``owed``: all of them (and None) when there are at most SMALL."""
    first: list[StoredDelivery] = []
    for item in owed:
        if item is None:
            time.sleep(STARVED_WAIT)  # the planner is still at work on the first part
            continue
        first.append(item)
        if len(first) > SMALL:
            return first, owed
    return first, None


@dataclass(slots=True)
class _Message:
    lane: int
    kind: str  # "report", "done", "error", "interrupted", "gone"
    payload: Any = None


class _Lane:
    """One lane process seen from the router: its pipes and a thread that reads what it says."""

    def __init__(self, number: int, config: SenderConfig, lanes: int, path: Path, events: bool) -> None:
        share = config.concurrency // lanes + (number < config.concurrency % lanes)
        self.number = number
        child = spawn("d1sim.simulator.delivery.lane_entry")
        self.process, self.inbox, self.said = child.process, child.inbox, child.said
        self.setup = {"config": replace(config, concurrency=max(share, 1)), "path": str(path),
                      "events": events, "parent": os.getpid()}
        self.reader: threading.Thread | None = None
        self.ready = False  # set up and at work: stopped with SIGINT, so it records what it has

    def begin(self, messages: queue.SimpleQueue[_Message]) -> None:
        self.send(self.setup)
        self.reader = threading.Thread(target=self._read, args=(messages,), daemon=True,
                                       name=f"d1sim-lane-{self.number}")
        self.reader.start()

    def send(self, message: object) -> None:
        with contextlib.suppress(OSError):  # the lane is gone: its reader says so
            self.inbox.send(message)

    def _read(self, messages: queue.SimpleQueue[_Message]) -> None:
        while True:
            try:
                kind, payload = self.said.recv()
            except (EOFError, OSError):
                messages.put(_Message(self.number, "gone", self.process.wait()))
                return
            if kind == "ready":
                self.ready = True
                continue
            messages.put(_Message(self.number, kind, payload))
            if kind in ("done", "error", "interrupted"):
                return

    def abandon(self) -> None:
        """Stop a lane that was never given work."""
        self.process.terminate()
        self.inbox.close()

    def close(self, wait: float = STOP_SECONDS) -> None:
        """Let a lane that is done exit; interrupt one still at work, as Ctrl-C would (it records
        the answers it has), and stop it if it does not end within ``wait`` seconds."""
        if not self.inbox.closed:
            self.inbox.close()
        if self.process.poll() is None and self.reader is not None and self.reader.is_alive():
            # A lane still starting has nothing to record: it is stopped outright.
            self.process.send_signal(signal.SIGINT if self.ready else signal.SIGTERM)
        try:
            self.process.wait(wait)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(wait)
        if self.reader is not None:
            self.reader.join(wait)
        self.said.close()


class _Router:
    """Hands deliveries to lanes by key and gathers what the lanes say."""

    def __init__(self, lanes: list[_Lane], progress: Progress | None) -> None:
        self.lanes, self.progress = lanes, progress
        self.messages: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self.counts = [DeliverySummary() for _ in lanes]
        self.finished: set[int] = set()

    def run(self, first: list[StoredDelivery], rest: Iterator[StoredDelivery | None]) -> DeliverySummary:
        for lane in self.lanes:
            lane.begin(self.messages)
        held: list[list[tuple[Any, ...]]] = [[] for _ in self.lanes]
        for item in itertools.chain(first, rest):
            if item is None:  # the planner is behind: hand over what is here, hear the lanes
                self._hand_all(held)
                self._hear(STARVED_WAIT)
                continue
            n = lane_of(item.delivery.key, len(self.lanes))
            held[n].append(_pack(item))
            if len(held[n]) >= HAND:
                self._hand(n, held)
                self._hear(0)
        self._hand_all(held)
        for lane in self.lanes:
            lane.send(None)  # nothing more: each lane ends once what it holds is settled
        while len(self.finished) < len(self.lanes):
            self._hear(1.0)
        total = DeliverySummary()
        for counts in self.counts:
            _add(total, counts)
        return total

    def _hand(self, lane: int, held: list[list[tuple[Any, ...]]]) -> None:
        self.lanes[lane].send(held[lane])  # blocks while the lane is full: planning waits too
        held[lane] = []

    def _hand_all(self, held: list[list[tuple[Any, ...]]]) -> None:
        for lane, items in enumerate(held):
            if items:
                self._hand(lane, held)

    def _hear(self, timeout: float) -> None:
        """Take what the lanes said; wait up to ``timeout`` seconds for the first word."""
        try:
            message = self.messages.get(timeout=timeout) if timeout else self.messages.get_nowait()
        except queue.Empty:
            return
        while True:
            self._take(message)
            try:
                message = self.messages.get_nowait()
            except queue.Empty:
                return

    def _take(self, message: _Message) -> None:
        kind, payload = message.kind, message.payload
        if kind == "report" or kind == "done":
            counts, events = payload
            self.counts[message.lane] = DeliverySummary(*counts)
            if self.progress is not None and events:
                total = DeliverySummary()
                for c in self.counts:
                    _add(total, c)
                for fields in events:
                    self.progress(DeliveryEvent(_unpack(fields[0]), *fields[1:], summary=total))
            if kind == "done":
                self.finished.add(message.lane)
        elif kind == "error":
            raise _restored(*payload)
        elif kind == "interrupted":
            raise KeyboardInterrupt
        elif message.lane not in self.finished:  # "gone" without a word
            raise UsageError(f"sender process {message.lane + 1} stopped unexpectedly (exit code "
                             f"{payload}); nothing recorded was lost: run the same command again "
                             "to resume")


def _add(total: DeliverySummary, counts: DeliverySummary) -> None:
    total.delivered += counts.delivered
    total.dead += counts.dead
    total.attempts += counts.attempts
    total.retries += counts.retries
    total.warnings += counts.warnings


def _pack(item: StoredDelivery) -> tuple[Any, ...]:
    """A stored delivery as plain tuples (pickled several times faster than the dataclasses)."""
    return (item.id, item.run_id, delivery_fields(item.delivery),
            item.state, item.attempts, item.last_status, item.last_error, item.next_attempt_at)


def _unpack(fields: tuple[Any, ...]) -> StoredDelivery:
    return StoredDelivery(fields[0], fields[1], Delivery(*fields[2]), *fields[3:])


def _restored(blob: bytes | None, text: str) -> BaseException:
    """The exception a lane raised, as it was if it survives pickling, else its text."""
    if blob is not None:
        try:
            exc = pickle.loads(blob)
            if isinstance(exc, BaseException):
                return exc
        except Exception:
            pass
    return UsageError(text)


# -- the lane process ------------------------------------------------------------------------


class _LaneDriver(Driver):
    """The usual driver, telling the router after each commit what it has done."""

    def __init__(self, said: Connection, events: bool, *args: Any, **kwargs: Any) -> None:
        self.said = said
        self.pending_events: list[tuple[Any, ...]] | None = [] if events else None
        super().__init__(*args, progress=self._event if events else None, **kwargs)

    def _event(self, event: DeliveryEvent) -> None:
        assert self.pending_events is not None
        self.pending_events.append((_pack(event.delivery), event.attempt, event.state, event.retry_in))

    def _flush(self) -> None:
        had = bool(self.rows)
        super()._flush()
        if had and self.pending_events is not None:
            events, self.pending_events = self.pending_events, []
            self.said.send(("report", (astuple(self.summary), events)))


def _from_router(inbox: Connection) -> Iterator[StoredDelivery | None]:
    """What the router hands this lane; None while nothing is there yet."""
    while True:
        if not inbox.poll():
            yield None
            continue
        try:
            part = inbox.recv()
        except EOFError:  # the router closed early: stop taking work, settle what is held
            return
        if part is None:
            return
        yield from map(_unpack, part)


def lane_main(inbox: Connection, said: Connection) -> int:
    """A lane process: take the setup, then send what the router hands over until it says stop."""
    try:
        setup = inbox.recv()
    except EOFError:  # let go before any work (a small plan, an error elsewhere)
        return 0
    exit_with_parent(setup["parent"])
    config: SenderConfig = setup["config"]
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # ignored while starting
        said.send(("ready", None))
        with Outbox(setup["path"]) as outbox, client_for(config, None) as http:
            outbox.db.leave_checkpoints()  # the replay's process checkpoints for every lane
            driver = _LaneDriver(said, setup["events"], outbox, config, CurlWorkers(config, Poster(config, http)),
                                 clock=time.monotonic, sleep=time.sleep, rng=random.Random(), time_scale=0.0)
            summary = driver.run(_from_router(inbox), resume=False)
        said.send(("done", (astuple(summary), driver.pending_events or [])))
        return 0
    except KeyboardInterrupt:
        said.send(("interrupted", None))
        return 130
    except BaseException as exc:  # told to the router, which raises it in the calling process
        try:
            blob: bytes | None = pickle.dumps(exc)
        except Exception:
            blob = None
        said.send(("error", (blob, f"{type(exc).__name__}: {exc}")))
        return 1
