"""The sender: POSTs a run's owed deliveries to the receiver with D1's auth, retries and order.

The HTTP work runs in libcurl's multi interface (``concurrency`` keep-alive connections, see
:mod:`d1sim.simulator.delivery.libcurl`); with an injected ``httpx.Client`` (an in-process
transport in tests) it runs in ``concurrency`` worker threads over that client instead. The
calling thread schedules (a key's deliveries one at a time in order, ``due`` under the time
scale, backoff) and is the outbox's single writer: it commits answers in groups, so SQLite
never makes the workers wait, and a key's next delivery goes only once the previous answer is
committed. Every planned delivery is in the outbox before the first POST, so a killed run
resumes with what is still owed and resends what was in flight (at least once, as D1 does).

Example::

    config = SenderConfig("https://issuer.example/notifications/d1/v2/issuers/{issuerId}/cards",
                          auth=StaticBearer("t0ken"), sign_secret="whsec_...")
    summary = deliver_run(Outbox(), run_id, config, time_scale=3600)
    print(summary.delivered, summary.dead)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from d1sim.simulator.delivery.driver import (  # re-exported: what a call reports
    DeliveryEvent,
    DeliverySummary,
    Driver,
    Progress,
    Recorder,
    TargetUnreachable,
    ThreadWorkers,
    Workers,
)
from d1sim.simulator.delivery.lanes import lanes_for, send_in_lanes
from d1sim.simulator.delivery.lease import LEASE_SECONDS, RunLease
from d1sim.simulator.delivery.libcurl import CurlWorkers
from d1sim.simulator.delivery.outbox import Outbox, StoredDelivery
from d1sim.simulator.delivery.sender import (  # re-exported: the sender's settings and client live there
    DEFAULT_ISSUER_ID,
    Poster,
    SenderConfig,
    build_client,
    client_for,
)
from d1sim.simulator.errors import UsageError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_ISSUER_ID", "DeliveryEvent", "DeliverySummary", "Poster", "Progress", "SenderConfig",
    "TargetUnreachable", "build_client", "deliver_run", "resend",
]


def deliver_run(
    outbox: Outbox,
    run_id: str,
    config: SenderConfig,
    *,
    client: httpx.Client | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    time_scale: float = 0.0,
    progress: Progress | None = None,
    lease_ttl: float = LEASE_SECONDS,
    owed: Callable[[], Feed] | None = None,
    senders: int = 1,
) -> DeliverySummary:
    """Deliver everything the outbox still owes for ``run_id``; safe to call again after a kill.

    ``time_scale`` maps the deliveries' virtual ``due`` seconds to real ones: 0 sends as fast as
    order allows, 1 in real time, 3600 an hour per second. Backoff and Retry-After are real
    seconds. ``client`` (e.g. over ``httpx.MockTransport``), ``clock``, ``sleep`` and ``rng``
    are injectable. Returns counts; raises UsageError for an unknown or half-planned run, RunBusy
    while another live sender holds the run (see :mod:`d1sim.simulator.delivery.lease`), TargetUnreachable
    when no connection can be made before any answer, and AuthError when the token endpoint
    fails (the run stays resumable).

    ``owed``, called once the run is held, streams what to send instead of the outbox's
    pending deliveries: a run still being planned is sent while its plan is stored (see
    :mod:`d1sim.simulator.replay.planning`); a ``None`` in the stream means "more later". A
    stream with a ``recorder`` (not None) commits the attempts in its own process.

    ``senders`` above 1 sends through that many processes on lanes partitioned by key (see
    :mod:`d1sim.simulator.delivery.lanes`), when the run can: a file outbox, time scale 0, no
    injected client, and a plan of more than a few hundred deliveries.
    """
    run = outbox.run(run_id)
    if run is None or (run.status == "planning" and owed is None):
        raise UsageError(f"run {run_id} does not exist or was not completely planned")
    if time_scale < 0:
        raise UsageError(f"time scale must be >= 0, not {time_scale}")
    with RunLease(outbox, run_id, ttl=lease_ttl):  # RunBusy if another holds it
        stream = owed() if owed is not None else outbox.owed(run_id)
        # A streamed plan (replay.planning.Streamed) may bring the recorder of its writer
        # process, which also checkpoints the WAL.
        recorder = getattr(stream, "recorder", None)
        pace = _Pace(clock, sleep, rng, time_scale, progress)
        resume = run.status not in ("ready", "planning")

        def alone(items: Iterator[StoredDelivery | None]) -> DeliverySummary:
            return _drive(outbox, config, client, items, resume, pace, recorder)

        try:
            with outbox.db.checkpoints_aside(elsewhere=recorder is not None):
                if client is None and time_scale == 0 and outbox.path is not None:
                    lanes = lanes_for(config, senders)
                    if lanes > 1:
                        return send_in_lanes(outbox, config, stream, lanes, alone, progress)
                return alone(stream)
        finally:
            stream.close()  # a planner still at work stops


def resend(
    outbox: Outbox,
    delivery_id: int,
    config: SenderConfig,
    *,
    client: httpx.Client | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    progress: Progress | None = None,
) -> DeliverySummary:
    """Send one stored delivery again now, with a fresh retry budget (``deliveries resend``)."""
    stored = outbox.delivery(delivery_id)
    if stored is None:
        raise UsageError(f"no delivery with id {delivery_id} in {outbox.path or ':memory:'}")
    with RunLease(outbox, stored.run_id, marks=False):  # not while a sender is on its run
        item = outbox.requeue(delivery_id)
        return _drive(outbox, config, client, iter([item]), False, _Pace(clock, sleep, rng, 0.0, progress))


class Feed(Protocol):
    """What ``owed`` gives: the deliveries to send (None: more later), closed when done."""

    def __next__(self) -> StoredDelivery | None: ...

    def __iter__(self) -> Iterator[StoredDelivery | None]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Pace:
    """The injected clock, sleep and randomness of one call, with its time scale and progress."""

    clock: Callable[[], float]
    sleep: Callable[[float], None]
    rng: random.Random | None
    time_scale: float
    progress: Progress | None


def _workers(config: SenderConfig, http: httpx.Client, injected: bool) -> Workers:
    """libcurl for a real target; threads over the client when one was injected (tests)."""
    poster = Poster(config, http)  # builds the headers; its client fetches OAuth2 tokens
    if injected:
        return ThreadWorkers(poster, config.concurrency, config.timeout)
    return CurlWorkers(config, poster)


def _drive(outbox: Outbox, config: SenderConfig, client: httpx.Client | None,
           owed: Iterator[StoredDelivery | None], resume: bool, pace: _Pace,
           recorder: Recorder | None = None) -> DeliverySummary:
    with client_for(config, client) as http:
        driver = Driver(outbox, config, _workers(config, http, client is not None), clock=pace.clock, sleep=pace.sleep,
                        rng=pace.rng or random.Random(), time_scale=pace.time_scale, progress=pace.progress,
                        recorder=recorder)
        return driver.run(owed, resume=resume)
