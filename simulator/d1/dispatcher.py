"""The background sender of ``d1sim serve``: delivers every run's owed notifications as they
fall due on their issuer's virtual clock, with the issuer's auth, D1's retry rules and bulk POSTs.

One thread schedules and is the only one that records answers (grouped into one commit); a pool
of workers only does HTTP through :class:`d1sim.simulator.delivery.sender.Poster`, and every answer is
judged by :func:`d1sim.simulator.delivery.retry.judge`, as replay's sender does. Ready heads of one issuer
are packed into POSTs of at most ``maxOperations`` operations, so a busy issuer gets bulk
notifications of several cards, as D1 sends them. Everything owed is in the outbox, so a
restart (:meth:`Dispatcher.start`) resumes each lane at its first owed delivery; what was in
flight is sent again (at least once, as D1 does).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import httpx

from d1sim.simulator.d1.issuers import Issuers
from d1sim.simulator.d1.lanes import Lane, Timetable, merged_body, pack
from d1sim.simulator.d1.store import Store
from d1sim.simulator.delivery.engine import Poster, build_client
from d1sim.simulator.delivery.outbox import Attempt, AttemptRow, Outbox, StoredDelivery
from d1sim.simulator.delivery.retry import judge
from d1sim.simulator.delivery.sender import Answer

IDLE = 1.0  # longest sleep: clocks are saved and settings changes noticed at least this often
PER_WORKER = 2  # POSTs handed out per worker, so none idles while answers are recorded

log = logging.getLogger("d1sim.serve")


@dataclass(frozen=True, slots=True)
class _Answered:
    issuer_id: str
    lanes: list[Lane]
    answer: Answer


class Dispatcher:
    """Delivers the server's runs; ``track`` new runs, ``reload`` changed ones, ``wake`` it."""

    def __init__(
        self,
        outbox: Outbox,
        store: Store,
        issuers: Issuers,
        *,
        workers: int = 8,
        real: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox, self.store, self.issuers, self.real = outbox, store, issuers, real
        self.workers, self.rng = workers, rng or random.Random()
        self.lock = threading.RLock()  # guards lanes and timetables (cancel takes it too)
        self.lanes: dict[str, list[Lane]] = {}
        self._tables: dict[str, Timetable] = {}
        self._answers: queue.SimpleQueue[_Answered] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="d1sim-post")
        self._posters: dict[str, tuple[object, Poster]] = {}
        self._clients: list[httpx.Client] = []
        self._thread = threading.Thread(target=self._loop, name="d1sim-dispatcher", daemon=True)
        self.in_flight = 0
        self.counts: Counter[str] = Counter()

    # -- life ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Pick up every unfinished run (a restart resumes them), then start sending."""
        for run in self.store.runs(active=True):
            self.reload(run.run_id)
        self._thread.start()

    def stop(self) -> None:
        """Stop dispatching, let POSTs in flight finish, record their answers, close clients."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(30)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._record(self._drain())
        self.issuers.checkpoint(force=True)
        for client in self._clients:
            client.close()

    def wake(self) -> None:
        """Look at the timetables again now (after an order, a pause, a clock change...)."""
        self._wake.set()

    # -- lanes --------------------------------------------------------------------------------

    def reload(self, run_id: str) -> None:
        """(Re)build a run's lanes from what the outbox owes; a head in flight stays the head."""
        run = self.store.run(run_id)
        if run is None:
            return
        owed: dict[str, list[StoredDelivery]] = {}
        with self.lock:  # answers are recorded under it too: the snapshot cannot be stale
            for item in self.outbox.owed(run_id):
                owed.setdefault(item.delivery.key, []).append(item)
            old = {lane.key: lane for lane in self.lanes.get(run_id, [])}
            lanes = [
                self._refill(
                    old.pop(key) if key in old else Lane(run_id, key, run.issuer_id, run.start),
                    items,
                )
                for key, items in owed.items()
            ]
            lanes += [lane for lane in old.values() if lane.busy]
            for lane in old.values():
                Timetable.forget(lane)
            self.lanes[run_id] = lanes
            if not lanes:
                self._finish(run_id)
            elif run.finished:
                self.store.set_finished(run_id, False)
        self.wake()

    def _refill(self, lane: Lane, items: list[StoredDelivery]) -> Lane:
        if lane.busy:
            head = lane.head
            items = [head, *(i for i in items if i.id != head.id)]
        lane.waiting = deque(items)
        if not lane.busy:
            self._table(lane.issuer_id).file(lane, self.real())
        return lane

    def _table(self, issuer_id: str) -> Timetable:
        return self._tables.setdefault(issuer_id, Timetable())

    def _finish(self, run_id: str) -> None:
        self.lanes.pop(run_id, None)
        self.store.set_finished(run_id, True)
        self.outbox.set_run_status(run_id, "done")

    # -- the loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._record(self._drain())
                wake_at = self._dispatch()
                self.issuers.checkpoint()
            except Exception:  # a bug must not stop every lifecycle: log it, go on
                log.exception("dispatcher step failed")
                wake_at = self.real() + IDLE
            self._wake.wait(min(max(wake_at - self.real(), 0.0), IDLE))

    def _dispatch(self) -> float:
        """Hand ready POSTs to the workers; return the real time something next falls due."""
        real, wake = self.real(), self.real() + IDLE
        with self.lock:
            for issuer_id, table in self._tables.items():
                settings = self.issuers.get(issuer_id)
                room = self.workers * PER_WORKER - self.in_flight
                if settings is None or room <= 0:
                    continue
                clock = self.issuers.clock(issuer_id)
                if clock.paused:
                    continue
                immediate = clock.scale == 0
                ready = table.pop_ready(clock.now(real), real, immediate, room * settings.max_operations)
                for post in pack(ready, settings.max_operations):
                    self._submit(issuer_id, post)
                wake = min(wake, table.next_time(partial(clock.real_time_of, real=real), immediate))
        return wake

    def _submit(self, issuer_id: str, lanes: list[Lane]) -> None:
        head = lanes[0].head
        item = replace(head, delivery=replace(head.delivery, body=merged_body(lanes)))
        for lane in lanes:
            lane.busy = True
        self.in_flight += 1
        try:
            # A token endpoint failure comes back as an unanswered attempt, retried like one.
            future = self._pool.submit(self._poster(issuer_id).attempt, item)
        except Exception as exc:  # no sender for the issuer now: the answer says why, the lane goes on
            self._answered(issuer_id, lanes, _failed(exc))
            return
        future.add_done_callback(lambda f: self._answered(issuer_id, lanes, _outcome(f)))

    def _answered(self, issuer_id: str, lanes: list[Lane], answer: Answer) -> None:
        self._answers.put(_Answered(issuer_id, lanes, answer))
        self._wake.set()

    def _poster(self, issuer_id: str) -> Poster:
        settings = self.issuers.get(issuer_id)
        cached = self._posters.get(issuer_id)
        if cached is not None and cached[0] is settings:
            return cached[1]
        assert settings is not None
        config = replace(settings.sender_config(), concurrency=self.workers)
        client = build_client(config)
        self._clients.append(client)  # an old client may still be in use: closed at stop
        self._posters[issuer_id] = (settings, Poster(config, client))
        return self._posters[issuer_id][1]

    # -- answers ------------------------------------------------------------------------------

    def _drain(self) -> list[_Answered]:
        answers = []
        while not self._answers.empty():
            answers.append(self._answers.get_nowait())
        return answers

    def _record(self, answers: list[_Answered]) -> None:
        """Commit every answer in one transaction, then move each lane on."""
        if not answers:
            return
        with self.lock:
            settled: list[tuple[Lane, str, float | None]] = []
            rows: list[AttemptRow] = []
            for answer in answers:
                self.in_flight -= 1
                for lane in answer.lanes:
                    state, retry_at, attempt = self._verdict(answer, lane.head)
                    rows.append((lane.head.id, attempt, state, retry_at))
                    settled.append((lane, state, retry_at))
            try:
                self.outbox.record_attempts(rows)
            except Exception:  # not recorded, so still owed: the lanes send their heads again
                log.exception("recording %d answers failed; their deliveries are sent again", len(rows))
                for lane, _, _ in settled:
                    lane.busy = False
                    self._table(lane.issuer_id).file(lane, self.real())
                return
            for lane, state, retry_at in settled:
                self._advance(lane, state, retry_at)

    def _verdict(self, answered: _Answered, item: StoredDelivery) -> tuple[str, float | None, Attempt]:
        answer, now = answered.answer, self.real()
        self.counts["attempts"] += 1
        try:
            policy = self._poster(answered.issuer_id).config.retry
            verdict = judge(answer.attempt, answer.retry_after, item.attempts, policy, self.rng, now)
        except Exception as exc:  # a failing step is its delivery's, never its lane's: dead, recoverable
            log.exception("judging the answer to delivery %s failed", item.id)
            self.counts["dead"] += 1
            failed = f"d1sim could not judge this answer ({type(exc).__name__}: {exc}); recover resends it"
            error = "; ".join(e for e in (answer.attempt.error, failed) if e)
            return "dead", None, replace(answer.attempt, error=error)
        if verdict.delay is not None:
            return "pending", now + verdict.delay, verdict.attempt
        self.counts[verdict.state] += 1
        return verdict.state, None, verdict.attempt

    def _advance(self, lane: Lane, state: str, retry_at: float | None) -> None:
        lane.busy = False
        if state == "pending":
            head = lane.head
            lane.waiting[0] = replace(head, attempts=head.attempts + 1, next_attempt_at=retry_at)
        else:
            lane.waiting.popleft()
        if lane.waiting:
            self._table(lane.issuer_id).file(lane, self.real())
            return
        lanes = self.lanes.get(lane.run_id, [])
        if lane in lanes:
            lanes.remove(lane)
        if not lanes and lane.run_id in self.lanes:
            self._finish(lane.run_id)

    def stats(self) -> dict[str, Any]:
        """Counters since start (attempts, delivered, dead), POSTs in flight, lanes with owed
        deliveries (in all and per issuer) and unfinished runs."""
        with self.lock:
            per_issuer: Counter[str] = Counter()
            for lanes in self.lanes.values():
                for lane in lanes:
                    per_issuer[lane.issuer_id] += 1
            return {
                **self.counts,
                "inFlight": self.in_flight,
                "lanes": per_issuer.total(),
                "lanesByIssuer": dict(per_issuer),
                "runs": len(self.lanes),
            }


def _failed(exc: BaseException) -> Answer:
    """An attempt that never reached HTTP, as an unanswered one (retried like a timeout)."""
    attempt = Attempt(time.time(), None, 0.0, error=f"{type(exc).__name__}: {exc}", request_headers=())
    return Answer(attempt, failure=exc)


def _outcome(future: Future[Answer]) -> Answer:
    try:
        return future.result()
    except BaseException as exc:  # the worker itself failed: still an answer, so the lane goes on
        return _failed(exc)
