"""Scenario runs asked for through the admin API, planned as jobs off the request threads.

``POST /_sim/issuers/{id}/runs`` takes one of ``slots`` planning slots (:class:`BudgetFull`, a
429, at once when none is free) and answers 202 with a :class:`Job`; the slot's own thread has
the run planned (:func:`~d1sim.simulator.d1.uploads.plan_run_request`) and stores it whole, and
``GET /_sim/jobs/{jobId}`` tells how it went. With ``processes`` each slot plans in a planning
process of its own, limited to :data:`PROCESS_MEMORY`, and killed when it is still at it
``seconds`` + :data:`GRACE` after it was handed the run -- whatever the scenario makes it do, no
upload holds a slot, a thread or memory longer. Without (``--plan-workers 0``) the slot's thread
plans, bounded only by the expansion's own look at the clock between deliveries.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from d1sim.simulator.d1.planner import planning_context, prepare_planning_process
from d1sim.simulator.d1.uploads import PlannedRun, Refusal, RunRequest, plan_run_request

GRACE = 2.0  # seconds past the budget before a planning process is killed
START_TIMEOUT = 60.0  # for a planning process to import what it needs (about a second)
PROCESS_MEMORY = 1024 * 1024 * 1024  # address space of a planning process (it needs ~70 MB idle)
KEPT_JOBS = 1000  # finished jobs remembered for GET /_sim/jobs/{jobId}, newest
log = logging.getLogger("d1sim.serve")


class BudgetFull(Exception):
    """Every planning slot is taken; try again after ``retry_after`` seconds."""

    def __init__(self, slots: int, retry_after: int) -> None:
        super().__init__(f"{slots} scenario run(s) are being planned; try again shortly")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Job:
    """A run asked for: ``planning``, then ``planned`` (``run_id`` is stored) or ``failed``."""

    job_id: str
    issuer_id: str
    created: float
    state: str = "planning"
    run_id: str | None = None
    scenario: str | None = None
    seed: int | None = None
    deliveries: int | None = None
    problem: Refusal | None = None


class PlanningProcess:
    """One planning process, started when first needed and killed when it overruns."""

    def __init__(self) -> None:
        self._process: Any = None
        self._conn: Connection | None = None

    def plan(self, request: RunRequest) -> PlannedRun | Refusal:
        """``request`` planned in the process; a :class:`Refusal` when it overran or died."""
        conn = self._connection()
        if conn is None:
            return plan_run_request(request)  # processes cannot start here: plan in-process
        try:
            conn.send(request)
            if conn.poll(request.seconds + GRACE):
                outcome: PlannedRun | Refusal = conn.recv()
                return outcome
        except (EOFError, OSError) as exc:
            log.warning("a planning process ended while planning: %s", exc)
            self.close()
            return Refusal(422, "Scenario too large", "planning the run used more memory than a "
                           "planning process may, or crashed it; make the scenario smaller")
        self.close()
        return Refusal(422, "Scenario too large", f"planning the run took more than {request.seconds:g} s "
                       "and was stopped; make the scenario smaller")

    def _connection(self) -> Connection | None:
        if self._conn is not None and self._process.is_alive():
            return self._conn
        self.close()
        try:
            context = planning_context()
            self._conn, theirs = context.Pipe()
            self._process = context.Process(
                target=serve_plans, args=(theirs, os.getpid()), name="d1sim-upload-planner", daemon=True)
            self._process.start()
            theirs.close()
            if not self._conn.poll(START_TIMEOUT):
                raise OSError(f"no answer in {START_TIMEOUT:g} s")
            self._conn.recv()  # "ready"
        except (OSError, EOFError) as exc:
            log.warning("no planning process for uploads (%s): planning them in-process", exc)
            self.close()
            return None
        return self._conn

    def kill(self) -> None:
        """Kill the process (if any) now: a plan it is making ends as a crash."""
        if self._process is not None:
            self._process.kill()

    def close(self) -> None:
        """Kill the process (if any) and let it go; the next plan starts a new one."""
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None


def serve_plans(conn: Connection, server_pid: int) -> None:
    """A planning process: plan each request received, until the server hangs up or is gone."""
    prepare_planning_process(server_pid)
    try:
        import resource  # not on Windows

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft > PROCESS_MEMORY:
            resource.setrlimit(resource.RLIMIT_AS, (PROCESS_MEMORY, hard))
    except (ImportError, ValueError, OSError):
        pass  # the time limit still holds
    conn.send("ready")
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        try:
            outcome: PlannedRun | Refusal = plan_run_request(request)
        except Exception as exc:  # a bug: say so, and stay up for the next run
            outcome = Refusal(500, "Internal error", f"unexpected error while planning: {exc!r}")
        conn.send(outcome)


class PlanningJobs:
    """``slots`` planning slots, each with a thread (and a process); the jobs they were given."""

    def __init__(
        self, store: Callable[[RunRequest, PlannedRun], str], slots: int = 2, seconds: float = 10.0,
        processes: bool = True,
    ) -> None:
        self.slots, self.seconds, self._store = slots, seconds, store
        self._free = threading.BoundedSemaphore(slots)
        self._queue: queue.SimpleQueue[tuple[Job, RunRequest] | None] = queue.SimpleQueue()
        self._workers = [PlanningProcess() if processes else None for _ in range(slots)]
        self._threads: list[threading.Thread] = []
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._stopped = False

    def submit(self, request: RunRequest) -> Job:
        """Hand ``request`` to a free slot; :class:`BudgetFull` at once when there is none."""
        if self._stopped or not self._free.acquire(blocking=False):
            raise BudgetFull(self.slots, max(1, round(self.seconds / 2)))
        job = Job(f"j-{secrets.token_hex(6)}", request.issuer_id, time.time())
        with self._lock:
            self._start_threads()
            self._remember(job)
        self._queue.put((job, request))
        return job

    def job(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def stop(self) -> None:
        """Stop planning: kill the planning processes, let the threads end (within the budget)."""
        self._stopped = True
        for _ in self._threads:
            self._queue.put(None)
        processes = [worker for worker in self._workers if worker is not None]
        for worker in processes:
            worker.kill()
        deadline = time.monotonic() + self.seconds + GRACE
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for worker in processes:
            worker.close()

    def _start_threads(self) -> None:
        if self._threads:
            return
        for n, worker in enumerate(self._workers):
            thread = threading.Thread(target=self._loop, args=(worker,), name=f"d1sim-run-planning-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _remember(self, job: Job) -> None:
        self._jobs[job.job_id] = job
        while len(self._jobs) > KEPT_JOBS:
            oldest = next(iter(self._jobs))
            if self._jobs[oldest].state == "planning":
                break  # at most ``slots`` of them, all recent
            del self._jobs[oldest]

    def _loop(self, worker: PlanningProcess | None) -> None:
        while (item := self._queue.get()) is not None:
            job, request = item
            try:
                self._finish(job, self._plan(worker, request), request)
            except Exception as exc:  # a bug must not take the slot with it
                log.exception("planning job %s failed", job.job_id)
                self._update(job, state="failed", problem=Refusal(500, "Internal error", f"unexpected error: {exc}"))
            finally:
                self._free.release()

    @staticmethod
    def _plan(worker: PlanningProcess | None, request: RunRequest) -> PlannedRun | Refusal:
        return plan_run_request(request) if worker is None else worker.plan(request)

    def _finish(self, job: Job, outcome: PlannedRun | Refusal, request: RunRequest) -> None:
        if self._stopped:  # its process may have been killed under it: say why
            self._update(job, state="failed", problem=Refusal(503, "Stopping", "the server stopped first"))
        elif isinstance(outcome, Refusal):
            self._update(job, state="failed", problem=outcome)
        else:
            run_id = self._store(request, outcome)
            self._update(job, state="planned", run_id=run_id, scenario=outcome.scenario, seed=outcome.seed,
                         deliveries=len(outcome.deliveries))

    def _update(self, job: Job, **changes: Any) -> None:
        with self._lock:
            self._jobs[job.job_id] = replace(self._jobs.get(job.job_id, job), **changes)
