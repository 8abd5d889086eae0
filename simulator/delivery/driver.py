"""The sender's scheduler: one run's owed deliveries through the workers, in order, on time.

The workers only do HTTP: libcurl's multi interface in this thread
(:class:`d1sim.simulator.delivery.libcurl.CurlWorkers`, the default for real targets), or
``concurrency`` threads over one ``httpx.Client`` (:class:`ThreadWorkers`, for an injected
client such as ``httpx.MockTransport``). The calling thread schedules (a key's deliveries one at
a time in order, ``due`` under the time scale, backoff) and hands answers in groups to a
:class:`Recorder`, so SQLite never makes the workers wait; a key's next delivery goes only once
the previous answer is committed. The recorder is this thread's own outbox connection
(:class:`OutboxRecorder`), or a process of its own that plans and records while this one only
sends (:mod:`d1sim.simulator.replay.writer`).
:func:`d1sim.simulator.delivery.engine.deliver_run` is the entry point.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

from d1sim.simulator.delivery.outbox import Attempt, AttemptRow, Outbox, StoredDelivery
from d1sim.simulator.delivery.retry import Schedule, judge
from d1sim.simulator.delivery.sender import Answer, Poster, SenderConfig
from d1sim.simulator.errors import UsageError

# Deliveries held in memory at once, and the bytes of their bodies; the rest wait in the outbox
# until there is room. A key sends one delivery at a time, so the keys in the window bound how
# many can be in flight: a plan that sends a card group's deliveries one after the other needs
# a few thousand of them to keep the connections busy while answers wait for their commit.
WINDOW, WINDOW_BYTES = 8000, 16 << 20
# Answers are committed together (group commit) while every worker is busy, but at least this
# often; a commit per answer would make SQLite's WAL writes the sender's bottleneck.
FLUSH_ROWS, FLUSH_AGE = 256, 0.2
# Ready deliveries handed out per worker: one in hand and one queued, so that no worker idles
# while this thread records an answer (only a key's head is ever handed out: order holds).
PER_WORKER = 2
# How long the driver waits before asking a stream that had nothing yet (a plan still being made).
STARVED_WAIT = 0.005
# How long the driver waits on HTTP answers before it looks again whether a recorder of another
# process has committed (and so released keys), when a worker is free.
COMMIT_POLL = 0.002
# How long an interrupted driver waits for the answers it has to be committed.
STOP_SECONDS = 5.0
_END = object()


class TargetUnreachable(UsageError):
    """No connection could be made to the target before any answer: said at once (exit 2)."""


@dataclass(frozen=True, slots=True)
class Answered:
    """A delivery and the answer its attempt came back with."""

    item: StoredDelivery
    answer: Answer


class Workers(Protocol):
    """What the driver hands attempts to: ``slots`` of them may be in hand at once."""

    slots: int

    def start(self) -> None: ...

    def submit(self, item: StoredDelivery) -> None: ...

    def collect(self, timeout: float | None) -> list[Answered]:
        """Answers that are in; wait up to ``timeout`` seconds (None: until one is) for one."""
        ...

    def stop(self) -> None:
        """Withdraw what has not been sent (it stays owed) and end the attempts in hand."""
        ...


class ThreadWorkers:
    """``concurrency`` threads, each making attempts with one shared :class:`Poster`."""

    def __init__(self, poster: Poster, concurrency: int, timeout: float) -> None:
        self.poster, self.timeout = poster, timeout
        self.slots = concurrency * PER_WORKER
        self.jobs: queue.SimpleQueue[StoredDelivery | None] = queue.SimpleQueue()
        self.answers: queue.SimpleQueue[Answered] = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._work, daemon=True, name=f"d1sim-sender-{n}")
                        for n in range(concurrency)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def submit(self, item: StoredDelivery) -> None:
        self.jobs.put(item)

    def collect(self, timeout: float | None) -> list[Answered]:
        try:
            batch = [self.answers.get(timeout=timeout)]
        except queue.Empty:
            return []
        while not self.answers.empty():
            batch.append(self.answers.get_nowait())
        return batch

    def stop(self) -> None:
        while not self.jobs.empty():
            self.jobs.get_nowait()
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(self.timeout * 2 + 1)  # a refreshed POST may take two timeouts

    def _work(self) -> None:
        while (item := self.jobs.get()) is not None:
            try:
                answer = self.poster.attempt(item)
            except BaseException as exc:  # reported to the driver, which stops the run
                answer = Answer(Attempt(time.time(), None, 0.0), failure=exc)
            self.answers.put(Answered(item, answer))


class Recorder(Protocol):
    """Commits attempt rows for the driver, in order; each hand-over is known by its ticket."""

    def record(self, rows: list[AttemptRow]) -> int:
        """Hand rows over to be committed together; return their ticket (they increase)."""
        ...

    def committed(self, timeout: float = 0.0) -> int:
        """The last ticket committed (0: none yet); wait up to ``timeout`` seconds for a newer one."""
        ...


class OutboxRecorder:
    """Commits at once, through the driver's own outbox connection."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox, self.ticket = outbox, 0

    def record(self, rows: list[AttemptRow]) -> int:
        self.outbox.record_attempts(rows, masked=True)  # the workers mask every answer
        self.ticket += 1
        return self.ticket

    def committed(self, timeout: float = 0.0) -> int:
        return self.ticket


@dataclass(slots=True)
class DeliverySummary:
    """What one call sent; ``elapsed`` is in the injected clock's seconds."""

    delivered: int = 0
    dead: int = 0
    attempts: int = 0
    retries: int = 0
    warnings: int = 0
    elapsed: float = 0.0


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One committed attempt, for the progress callback; ``retry_in`` seconds if rescheduled.

    ``summary`` is the call's running total at the time the event is reported.
    """

    delivery: StoredDelivery
    attempt: Attempt
    state: str
    retry_in: float | None
    summary: DeliverySummary


Progress = Callable[[DeliveryEvent], None]


class Driver:
    """Runs the workers and the schedule; the only thread that hands answers to the recorder."""

    def __init__(
        self,
        outbox: Outbox,
        config: SenderConfig,
        workers: Workers,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        rng: random.Random,
        time_scale: float,
        progress: Progress | None,
        recorder: Recorder | None = None,
    ) -> None:
        self.outbox, self.config, self.workers = outbox, config, workers
        self.recorder = recorder or OutboxRecorder(outbox)
        self.clock, self.sleep, self.rng, self.progress = clock, sleep, rng, progress
        self.time_scale = time_scale
        self.schedule = Schedule(self._ready_at)
        self.in_flight = 0  # handed to the workers, answer not recorded yet
        self.held_bytes = 0  # of the bodies of the deliveries the schedule holds
        self.slots = workers.slots
        self.summary = DeliverySummary()
        self.reached = False  # some attempt of this call got an HTTP answer
        # Recorded but not committed yet; settled heads release their keys only once committed.
        self.rows: list[AttemptRow] = []
        self.events: list[DeliveryEvent] = []
        self.settled: list[StoredDelivery] = []
        # Handed to the recorder, not committed yet: (ticket, settled heads, events), oldest first.
        self.awaiting: deque[tuple[int, list[StoredDelivery], list[DeliveryEvent]]] = deque()
        self.oldest = 0.0
        self.start = clock()
        self.epoch = time.time() - self.start  # clock reading + epoch = Unix time
        self.origin: float | None = None  # the virtual time ``start`` stands for

    def run(self, owed: Iterator[StoredDelivery | None], resume: bool) -> DeliverySummary:
        """Send everything ``owed`` yields; a resumed run's virtual time starts at its first due."""
        self.origin = None if resume else 0.0
        self.workers.start()
        try:
            self._loop(owed)
        except KeyboardInterrupt:
            # An interrupt is no crash: keep the answers already received. A recorder that
            # fails now (its pipe cut by the interrupt) must not hide the interrupt.
            with contextlib.suppress(UsageError):
                self._flush()
                self._release(self.recorder.committed(STOP_SECONDS) if self.awaiting else 0)
            raise
        finally:
            self.workers.stop()  # what was not sent stays owed
        self.summary.elapsed = self.clock() - self.start
        return self.summary

    def _loop(self, owed: Iterator[StoredDelivery | None]) -> None:
        exhausted = False
        while True:
            starved = False  # the stream has nothing yet but more to come (planning goes on)
            while not exhausted and self.schedule.held < WINDOW and self.held_bytes < WINDOW_BYTES:
                item = next(owed, _END)
                if item is None:
                    starved = True
                    break
                if isinstance(item, StoredDelivery):
                    self.schedule.add(item)
                    self.held_bytes += len(item.delivery.body)
                else:
                    exhausted = True
            if self.awaiting:
                self._release(self.recorder.committed())
            self._dispatch()
            if self.rows and self.in_flight < self.slots and not self.awaiting:
                self._flush()  # a worker is idle: committing may release waiting deliveries
                continue
            if exhausted and self.schedule.held == 0:
                return
            self._record(self._wait(starved))

    def _ready_at(self, item: StoredDelivery) -> float:
        ready = self.start
        if self.time_scale > 0:
            if self.origin is None:
                self.origin = item.delivery.due  # owed comes in due order: this is the earliest
            ready += max(item.delivery.due - self.origin, 0.0) / self.time_scale
        if item.next_attempt_at is not None:  # a retry planned before an interruption
            ready = max(ready, item.next_attempt_at - self.epoch)
        return ready

    def _dispatch(self) -> None:
        now = self.clock()
        while self.in_flight < self.slots:
            item = self.schedule.pop_ready(now)
            if item is None:
                return
            self.workers.submit(item)
            self.in_flight += 1

    def _wait(self, starved: bool = False) -> list[Answered]:
        """Block until answers arrive or the next delivery is due; sleep only when idle."""
        wake = self.schedule.next_time()
        delay = None if wake is None else max(wake - self.clock(), 0.0)
        if starved:  # look at the stream again soon
            delay = STARVED_WAIT if delay is None else min(delay, STARVED_WAIT)
        if self.in_flight == 0:
            if self.awaiting:  # only a commit can release what is held
                self._release(self.recorder.committed(delay if delay is not None else FLUSH_AGE))
            elif delay:
                self.sleep(delay)
            return []
        # With every slot taken only an answer can unblock us; else also wake for the timer (and
        # look at commits made elsewhere every COMMIT_POLL).
        timeout = delay if self.in_flight < self.slots else None
        if self.awaiting and self.in_flight < self.slots:
            timeout = COMMIT_POLL if timeout is None else min(timeout, COMMIT_POLL)
        if self.rows:  # slow answers must not hold recorded ones back for long
            timeout = FLUSH_AGE if timeout is None else min(timeout, FLUSH_AGE)
        return self.workers.collect(timeout)

    def _record(self, batch: list[Answered]) -> None:
        """Settle answers in memory; commit when enough are waiting, or they wait too long."""
        if batch and not self.rows:
            self.oldest = time.perf_counter()  # real time: it bounds real commit latency
        batch = [self._unreachable(answered) for answered in batch]
        for answered in batch:
            if answered.answer.failure is None:
                self._settle(answered.item, answered.answer)
        failures = [a.answer.failure for a in batch if a.answer.failure is not None]
        stale = time.perf_counter() - self.oldest > FLUSH_AGE
        if failures or stale or len(self.rows) >= FLUSH_ROWS:
            self._flush()
        if failures:
            raise failures[0]

    def _unreachable(self, answered: Answered) -> Answered:
        """A refused connection before any answer stops the run (unless told to keep trying)."""
        answer = answered.answer
        if answer.attempt.status_code is not None:
            self.reached = True
        elif answer.refused and not self.reached and not self.config.keep_retrying_unreachable:
            failure = TargetUnreachable(
                f"cannot connect to the target {self.config.target} ({answer.attempt.error}); is the "
                "receiver running and listening there? Nothing was lost: run the same command again "
                "to resume, or add --keep-retrying-unreachable to keep retrying as D1 would"
            )
            return Answered(answered.item, replace(answer, failure=failure))
        return answered

    def _flush(self) -> None:
        """Hand recorded attempts to the recorder; their keys are released once committed."""
        if not self.rows:
            return
        rows, events, settled = self.rows, self.events, self.settled
        self.rows, self.events, self.settled = [], [], []
        self.awaiting.append((self.recorder.record(rows), settled, events))
        self._release(self.recorder.committed())

    def _release(self, committed: int) -> None:
        """Settle the keys of every hand-over committed by now, then report its attempts."""
        while self.awaiting and self.awaiting[0][0] <= committed:
            _, settled, events = self.awaiting.popleft()
            for item in settled:
                self.schedule.settle(item)
                self.held_bytes -= len(item.delivery.body)
            for event in events if self.progress else ():
                self.progress(event)  # type: ignore[misc]

    def _settle(self, item: StoredDelivery, answer: Answer) -> None:
        self.in_flight -= 1
        now = self.clock()
        verdict = judge(answer.attempt, answer.retry_after, item.attempts, self.config.retry,
                        self.rng, now + self.epoch)
        state, attempt, retry_in = verdict.state, verdict.attempt, verdict.delay
        retry_at = None
        if retry_in is not None:
            retry_at = now + retry_in + self.epoch
            self.schedule.retry(replace(item, attempts=item.attempts + 1), now + retry_in)
        self.rows.append((item.id, attempt, state, retry_at))
        if state != "pending":
            self.settled.append(item)
        self._count(state, attempt)
        if self.progress is not None:
            self.events.append(DeliveryEvent(item, attempt, state, retry_in, self.summary))

    def _count(self, state: str, attempt: Attempt) -> None:
        summary = self.summary
        summary.attempts += 1
        summary.warnings += attempt.warning is not None
        summary.delivered += state == "delivered"
        summary.dead += state == "dead"
        summary.retries += state == "pending"
