"""The planner: turns accepted orders into outbox runs, in the background, in order of arrival.

Expanding an order's scenario costs about a millisecond of CPU (most of it building a seeded
faker). In the server's process that millisecond would hold the GIL against the request
threads, so by default it runs in one planning process (``plan_workers``): the server process
only stores what comes back, one transaction per chunk of waiting orders. ``plan_workers=0``
expands in-process (tests, or where processes cannot be started); a broken planning process
falls back to that too. A restart plans whatever was accepted but not yet planned.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.d1.orders import expand_order, store_run
from d1sim.simulator.d1.store import OrderRecord, Store
from d1sim.simulator.delivery.outbox import Outbox
from d1sim.simulator.lifeline import exit_with_parent

PLAN_CHUNK = 200  # orders planned per outbox transaction when many are waiting
log = logging.getLogger("d1sim.serve")


def prepare_planning_process(server_pid: int) -> None:
    """First thing in a planning process: ignore Ctrl-C, end with the server."""
    # Ctrl-C reaches the whole process group; only the server decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A server killed with SIGKILL cannot stop its pool: the process must notice on its own.
    exit_with_parent(server_pid)


def planning_context() -> multiprocessing.context.BaseContext:
    """How planning processes start: forkserver (never fork the threaded server), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def planning_pool(workers: int) -> Executor:
    """Processes for :func:`expand_order`.

    Each ends by itself when the server is gone, also after a SIGKILL (no orphans).
    """
    return ProcessPoolExecutor(
        workers, mp_context=planning_context(), initializer=prepare_planning_process, initargs=(os.getpid(),)
    )


class Planner:
    """Plans accepted orders; ``on_planned(run_id)`` hands each new run to the dispatcher."""

    def __init__(
        self,
        outbox: Outbox,
        store: Store,
        max_operations: Callable[[str], int],
        target: Callable[[str], str],
        on_planned: Callable[[str], None],
        workers: int = 1,
    ) -> None:
        self.outbox, self.store = outbox, store
        self.max_operations, self.target, self.on_planned = max_operations, target, on_planned
        self.workers = workers
        self._pool: Executor | None = None
        self._queue: queue.SimpleQueue[OrderRecord | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # one planning at a time: an order is planned once
        self._thread = threading.Thread(target=self._loop, name="d1sim-planner", daemon=True)
        self._backlog = 0
        self._count_lock = threading.Lock()

    def start(self) -> None:
        """Plan what a previous process accepted but did not plan, then follow the queue."""
        for order in self.store.unplanned_orders():
            self.submit(order)
        self._thread.start()

    def stop(self) -> None:
        """Finish the chunk being planned, then stop (what is queued is planned at next start)."""
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(30)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, order: OrderRecord) -> None:
        """Queue an accepted order for planning."""
        self._count(1)
        self._queue.put(order)

    @property
    def backlog(self) -> int:
        """Orders accepted and not planned yet."""
        return self._backlog

    def _count(self, change: int) -> None:
        with self._count_lock:  # request threads submit concurrently
            self._backlog += change

    def ensure_planned(self, order: OrderRecord) -> OrderRecord:
        """The order once planned, planning it now if the queue has not reached it yet."""
        with self._lock:
            current = self.store.order(order.operation_id) or order
            if current.run_id is None:
                self._plan_all([current])
            return self.store.order(order.operation_id) or current

    def _loop(self) -> None:
        while (order := self._queue.get()) is not None:
            chunk = [order]
            while len(chunk) < PLAN_CHUNK and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    self._queue.put(None)  # stop after this chunk
                    break
                chunk.append(item)
            try:
                with self._lock:
                    self._plan_all([o for o in chunk if self._unplanned(o)])
            except Exception:  # a failed order must not stop planning the others
                log.exception("planning %d order(s) failed", len(chunk))
            self._count(-len(chunk))

    def _unplanned(self, order: OrderRecord) -> bool:
        current = self.store.order(order.operation_id)
        return current is not None and current.run_id is None

    def _expand(self, orders: list[OrderRecord]) -> list[tuple[str, list[Delivery]]]:
        jobs = [(order, self.max_operations(order.issuer_id)) for order in orders]
        if self.workers > 0:
            try:
                if self._pool is None:
                    self._pool = planning_pool(self.workers)
                return list(self._pool.map(expand_order, jobs, chunksize=16))
            except (BrokenProcessPool, OSError) as exc:
                log.warning("the planning process failed (%s): planning in-process from now on", exc)
                self.workers = 0
        return [expand_order(job) for job in jobs]

    def _plan_all(self, orders: list[OrderRecord]) -> None:
        if not orders:
            return
        planned = self._expand(orders)
        with self.outbox.transaction():  # one commit for the chunk: planning many is cheap
            runs = [(order, self._store(order, *plan)) for order, plan in zip(orders, planned, strict=True)]
        with self.store.batch():
            for order, run_id in runs:
                self.store.add_run(run_id, order.issuer_id, order.start)
                self.store.set_order_run(order.operation_id, run_id)
        for _, run_id in runs:
            self.on_planned(run_id)

    def _store(self, order: OrderRecord, name: str, deliveries: list[Delivery]) -> str:
        options = {
            "issuerId": order.issuer_id,
            "cardId": order.card_id,
            "operationId": order.operation_id,
            "scenario": order.scenario,
            "seed": order.seed,
        }
        return store_run(self.outbox, name, self.target(order.issuer_id), options, deliveries)
