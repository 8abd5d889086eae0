"""The sender: POSTs a run's owed deliveries to the receiver with D1's auth, retries and order.

``concurrency`` worker threads only do HTTP over one connection-reusing ``httpx.Client``. The
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

import queue
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import httpx

from d1sim.simulator.delivery.auth import Auth, NoAuth, Signer
from d1sim.simulator.delivery.outbox import RESPONSE_EXCERPT, Attempt, AttemptRow, Outbox, StoredDelivery
from d1sim.simulator.delivery.retry import Outcome, RetryPolicy, Schedule, classify, parse_retry_after
from d1sim.simulator.errors import UsageError

DEFAULT_ISSUER_ID = "ISSUER0001"
# Deliveries held in memory at once; the rest wait in the outbox until there is room.
WINDOW = 2000
# Answers are committed together (group commit) while every worker is busy, but at least this
# often; a commit per answer would make SQLite's WAL writes the sender's bottleneck.
FLUSH_ROWS, FLUSH_AGE = 256, 0.2
# Ready deliveries handed out per worker: one in hand and one queued, so that no worker idles
# while this thread records an answer (only a key's head is ever handed out: order holds).
PER_WORKER = 2


@dataclass(frozen=True)
class SenderConfig:
    """Where and how to send: target, timeouts, concurrency, retries, auth, signing, TLS.

    ``url`` may contain ``{issuerId}``. ``ca_cert`` trusts one CA (else the system's);
    ``client_cert``/``client_key`` present D1's client certificate (mutual TLS).
    """

    url: str
    issuer_id: str = DEFAULT_ISSUER_ID
    timeout: float = 10.0
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    auth: Auth = field(default_factory=NoAuth)
    sign_secret: str | None = field(default=None, repr=False)
    verify: bool = True
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise UsageError(f"target URL must start with http:// or https://, not {self.url!r}")
        if len(self.issuer_id) != 10:
            raise UsageError(f"issuer id must be exactly 10 characters, not {self.issuer_id!r}")
        if self.timeout <= 0 or self.concurrency < 1:
            raise UsageError("timeout must be > 0 and concurrency at least 1")
        if self.client_key and not self.client_cert:
            raise UsageError("a client key needs its client certificate (--client-cert)")
        if self.sign_secret is not None:
            Signer(self.sign_secret)  # fail now, with a message that does not show the secret

    @property
    def target(self) -> str:
        """The URL every notification is POSTed to."""
        return self.url.replace("{issuerId}", self.issuer_id)

    def public_options(self) -> dict[str, Any]:
        """The settings worth recording with a run: everything except secrets."""
        return {
            "target": self.target,
            "issuer_id": self.issuer_id,
            "timeout": self.timeout,
            "concurrency": self.concurrency,
            "retry": asdict(self.retry),
            "auth": self.auth.describe(),
            "signed": self.sign_secret is not None,
            "verify": self.verify,
            "ca_cert": self.ca_cert,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
        }


def build_client(
    config: SenderConfig,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An ``httpx.Client`` pooled for ``concurrency`` workers, with the config's TLS settings.

    Pass ``transport`` (``httpx.MockTransport``, ``httpx.WSGITransport``) to stay in-process.
    """
    pool = config.concurrency + 2  # the token endpoint may need a connection of its own
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    return httpx.Client(
        timeout=config.timeout, limits=limits, transport=transport, verify=_tls(config)
    )


def _tls(config: SenderConfig) -> ssl.SSLContext | bool:
    if config.ca_cert is None and config.client_cert is None:
        return config.verify
    try:
        context = ssl.create_default_context(cafile=config.ca_cert if config.verify else None)
        if not config.verify:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if config.client_cert:
            context.load_cert_chain(config.client_cert, config.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the TLS certificates: {exc}") from None
    return context


class Poster:
    """Makes one attempt of a delivery: headers, optional signature, POST, one 401 refresh."""

    def __init__(self, config: SenderConfig, client: httpx.Client) -> None:
        self.config, self.client, self.url = config, client, config.target
        self.signer = Signer(config.sign_secret) if config.sign_secret else None

    def attempt(self, item: StoredDelivery) -> _Answer:
        """POST once (twice after a refreshable 401); transport failures become the answer."""
        started, begin = time.time(), time.perf_counter()
        status, content, retry_after, error, warning = None, b"", None, None, None
        try:
            response, warning = self._post(item)
            status, retry_after = response.status_code, response.headers.get("retry-after")
            content = response.content[:RESPONSE_EXCERPT]
        except httpx.TimeoutException as exc:
            error = f"timeout after {self.config.timeout:g} s ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            error = f"connection error: {type(exc).__name__}: {exc}"
        latency = (time.perf_counter() - begin) * 1000
        attempt = Attempt(started, status, latency, content, error, warning)
        return _Answer(item, attempt, retry_after)

    def _post(self, item: StoredDelivery) -> tuple[httpx.Response, str | None]:
        headers = self._headers(item)
        response = self.client.post(self.url, content=item.delivery.body, headers=headers)
        auth = self.config.auth
        if response.status_code != 401 or not auth.on_unauthorized(headers.get("Authorization")):
            return response, None
        again = self.client.post(self.url, content=item.delivery.body, headers=self._headers(item))
        return again, "401 answered: token fetched again and the POST repeated once"

    def _headers(self, item: StoredDelivery) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "x-correlation-id": item.delivery.correlation_id,
            **self.config.auth.headers(self.client),
        }
        if self.signer is not None:
            # Stable across retries, as Standard Webhooks wants for receivers' deduplication.
            msg_id = f"msg_{item.run_id}_{item.delivery.seq}"
            headers.update(self.signer.headers(msg_id, item.delivery.body, time.time()))
        return headers


@dataclass(frozen=True, slots=True)
class _Answer:
    item: StoredDelivery
    attempt: Attempt
    retry_after: str | None = None
    failure: BaseException | None = None  # stops the run: token endpoint down, or a bug


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


class _Driver:
    """Runs the workers and the schedule; the only thread that writes to the outbox."""

    def __init__(
        self,
        outbox: Outbox,
        config: SenderConfig,
        client: httpx.Client,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        rng: random.Random,
        time_scale: float,
        progress: Progress | None,
    ) -> None:
        self.outbox, self.config, self.poster = outbox, config, Poster(config, client)
        self.clock, self.sleep, self.rng, self.progress = clock, sleep, rng, progress
        self.time_scale = time_scale
        self.schedule = Schedule(self._ready_at)
        self.jobs: queue.SimpleQueue[StoredDelivery | None] = queue.SimpleQueue()
        self.answers: queue.SimpleQueue[_Answer] = queue.SimpleQueue()
        self.in_flight = 0  # handed to the workers, answer not recorded yet
        self.slots = config.concurrency * PER_WORKER
        self.summary = DeliverySummary()
        # Recorded but not committed yet; settled heads release their keys only once committed.
        self.rows: list[AttemptRow] = []
        self.events: list[DeliveryEvent] = []
        self.settled: list[StoredDelivery] = []
        self.oldest = 0.0
        self.start = clock()
        self.epoch = time.time() - self.start  # clock reading + epoch = Unix time
        self.origin: float | None = None  # the virtual time ``start`` stands for

    def run(self, owed: Iterator[StoredDelivery], resume: bool) -> DeliverySummary:
        """Send everything ``owed`` yields; a resumed run's virtual time starts at its first due."""
        self.origin = None if resume else 0.0
        workers = [
            threading.Thread(target=self._work, daemon=True, name=f"d1sim-sender-{n}")
            for n in range(self.config.concurrency)
        ]
        for worker in workers:
            worker.start()
        try:
            self._loop(owed)
        except KeyboardInterrupt:
            self._flush()  # an interrupt is no crash: keep the answers already received
            raise
        finally:
            self._stop(workers)
        self.summary.elapsed = self.clock() - self.start
        return self.summary

    def _stop(self, workers: list[threading.Thread]) -> None:
        """Withdraw queued jobs (they stay owed), then end the workers after their POST."""
        while not self.jobs.empty():
            self.jobs.get_nowait()
        for _ in workers:
            self.jobs.put(None)
        for worker in workers:
            worker.join(self.config.timeout * 2 + 1)  # a refreshed POST may take two timeouts

    def _work(self) -> None:
        while (item := self.jobs.get()) is not None:
            try:
                self.answers.put(self.poster.attempt(item))
            except BaseException as exc:  # reported to the driver, which stops the run
                self.answers.put(_Answer(item, Attempt(time.time(), None, 0.0), failure=exc))

    def _loop(self, owed: Iterator[StoredDelivery]) -> None:
        exhausted = False
        while True:
            while not exhausted and self.schedule.held < WINDOW:
                item = next(owed, None)
                exhausted = item is None
                if item is not None:
                    self.schedule.add(item)
            self._dispatch()
            if self.rows and self.in_flight < self.slots:
                self._flush()  # a worker is idle: committing may release waiting deliveries
                continue
            if exhausted and self.schedule.held == 0:
                return
            self._record(self._wait())

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
            self.jobs.put(item)
            self.in_flight += 1

    def _wait(self) -> list[_Answer]:
        """Block until answers arrive or the next delivery is due; sleep only when idle."""
        wake = self.schedule.next_time()
        delay = None if wake is None else max(wake - self.clock(), 0.0)
        if self.in_flight == 0:
            if delay:
                self.sleep(delay)
            return []
        # With every slot taken only an answer can unblock us; else also wake for the timer.
        timeout = delay if self.in_flight < self.slots else None
        if self.rows:  # slow answers must not hold recorded ones back for long
            timeout = FLUSH_AGE if timeout is None else min(timeout, FLUSH_AGE)
        try:
            batch = [self.answers.get(timeout=timeout)]
        except queue.Empty:
            return []
        while not self.answers.empty():
            batch.append(self.answers.get_nowait())
        return batch

    def _record(self, batch: list[_Answer]) -> None:
        """Settle answers in memory; commit when enough are waiting, or they wait too long."""
        if batch and not self.rows:
            self.oldest = time.perf_counter()  # real time: it bounds real commit latency
        for answer in batch:
            if answer.failure is None:
                self._settle(answer)
        failures = [answer.failure for answer in batch if answer.failure is not None]
        stale = time.perf_counter() - self.oldest > FLUSH_AGE
        if failures or stale or len(self.rows) >= FLUSH_ROWS:
            self._flush()
        if failures:
            raise failures[0]

    def _flush(self) -> None:
        """Commit recorded attempts, release their keys, then report them."""
        if not self.rows:
            return
        rows, events, settled = self.rows, self.events, self.settled
        self.rows, self.events, self.settled = [], [], []
        self.outbox.record_attempts(rows)
        for item in settled:
            self.schedule.settle(item)
        for event in events if self.progress else ():
            self.progress(event)  # type: ignore[misc]

    def _settle(self, answer: _Answer) -> None:
        item, attempt = answer.item, answer.attempt
        self.in_flight -= 1
        outcome = classify(attempt.status_code)
        if outcome is Outcome.WARNING and attempt.warning is None:
            attempt = replace(attempt, warning=f"answered {attempt.status_code}, not 204")
        state, retry_in = self._verdict(item, outcome, answer.retry_after)
        retry_at = None if retry_in is None else self.clock() + retry_in + self.epoch
        self.rows.append((item.id, attempt, state, retry_at))
        if state != "pending":
            self.settled.append(item)
        self._count(state, attempt)
        if self.progress is not None:
            self.events.append(DeliveryEvent(item, attempt, state, retry_in, self.summary))

    def _verdict(
        self, item: StoredDelivery, outcome: Outcome, retry_after: str | None
    ) -> tuple[str, float | None]:
        attempts, policy = item.attempts + 1, self.config.retry
        if outcome is Outcome.RETRY and not policy.gives_up(attempts):
            now = self.clock()
            asked = parse_retry_after(retry_after, now + self.epoch)
            delay = policy.delay(attempts, self.rng, asked)
            self.schedule.retry(replace(item, attempts=attempts), now + delay)
            return "pending", delay
        return ("delivered" if outcome in (Outcome.DELIVERED, Outcome.WARNING) else "dead"), None

    def _count(self, state: str, attempt: Attempt) -> None:
        summary = self.summary
        summary.attempts += 1
        summary.warnings += attempt.warning is not None
        summary.delivered += state == "delivered"
        summary.dead += state == "dead"
        summary.retries += state == "pending"


@contextmanager
def _client_for(config: SenderConfig, client: httpx.Client | None) -> Iterator[httpx.Client]:
    if client is not None:
        yield client
        return
    with build_client(config) as own:
        yield own


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
) -> DeliverySummary:
    """Deliver everything the outbox still owes for ``run_id``; safe to call again after a kill.

    ``time_scale`` maps the deliveries' virtual ``due`` seconds to real ones: 0 sends as fast as
    order allows, 1 in real time, 3600 an hour per second. Backoff and Retry-After are real
    seconds. ``client`` (e.g. over ``httpx.MockTransport``), ``clock``, ``sleep`` and ``rng``
    are injectable. Returns counts; raises UsageError for an unknown or half-planned run and
    AuthError when the token endpoint fails (the run stays resumable).
    """
    run = outbox.run(run_id)
    if run is None or run.status == "planning":
        raise UsageError(f"run {run_id} does not exist or was not completely planned")
    if time_scale < 0:
        raise UsageError(f"time scale must be >= 0, not {time_scale}")
    outbox.set_run_status(run_id, "running")
    try:
        summary = _drive(outbox, config, client, outbox.owed(run_id), run.status != "ready",
                         _Pace(clock, sleep, rng, time_scale, progress))
    except BaseException:
        outbox.set_run_status(run_id, "interrupted")
        raise
    outbox.set_run_status(run_id, "done")
    return summary


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
    item = outbox.requeue(delivery_id)
    return _drive(outbox, config, client, iter([item]), False, _Pace(clock, sleep, rng, 0.0, progress))


@dataclass(frozen=True, slots=True)
class _Pace:
    """The injected clock, sleep and randomness of one call, with its time scale and progress."""

    clock: Callable[[], float]
    sleep: Callable[[float], None]
    rng: random.Random | None
    time_scale: float
    progress: Progress | None


def _drive(outbox: Outbox, config: SenderConfig, client: httpx.Client | None,
           owed: Iterator[StoredDelivery], resume: bool, pace: _Pace) -> DeliverySummary:
    with _client_for(config, client) as http:
        driver = _Driver(outbox, config, http, clock=pace.clock, sleep=pace.sleep,
                         rng=pace.rng or random.Random(), time_scale=pace.time_scale, progress=pace.progress)
        return driver.run(owed, resume=resume)
