"""The sender's workers on libcurl's multi interface: every attempt in flight, one thread, no GIL.

The HTTP work of a replay (connecting, keeping connections alive, writing requests, parsing
answers, timing out) happens inside libcurl, through ``pycurl``'s multi interface, while the
driver's thread only hands transfers in and takes answers out. Each of ``concurrency`` handles
keeps its connection alive, so ``concurrency`` bounds the connections to the receiver, as with
the threaded workers. An attempt is bounded as a whole by ``timeout`` (``CURLOPT_TIMEOUT_MS``), at
most :data:`d1sim.simulator.delivery.sender.BODY_CAP` bytes of an answer are read, and a 401 is
answered once with a fresh token, as :class:`d1sim.simulator.delivery.sender.Poster` does: that
class still builds every request's headers (auth, signature, correlation id).

Example::

    workers = CurlWorkers(config, Poster(config, build_client(config)))
    driver = Driver(outbox, config, workers, ...)   # see d1sim.simulator.delivery.engine
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import certifi
import pycurl

import d1sim
from d1sim.simulator.delivery.driver import PER_WORKER, Answered
from d1sim.simulator.delivery.outbox import RESPONSE_EXCERPT, Attempt, StoredDelivery
from d1sim.simulator.delivery.outbox_records import Headers
from d1sim.simulator.delivery.sender import BODY_CAP, Answer, Poster, SenderConfig
from d1sim.simulator.redaction import mask_attempt, sender_secrets

# libcurl's errors that mean no TCP connection was made: the receiver never saw the request.
_REFUSED = {pycurl.E_COULDNT_CONNECT, pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_RESOLVE_PROXY}
# How long one wait for sockets lasts at most, so an interrupt is noticed.
_SELECT_SECONDS = 1.0


@dataclass(slots=True)
class _Transfer:
    """One attempt in flight on a handle: what it sends and what has come back so far."""

    item: StoredDelivery
    started: float
    begin: float
    authorization: str | None = None
    refreshed: bool = False
    body: bytearray = field(default_factory=bytearray)
    over: bool = False
    head: bytearray = field(default_factory=bytearray)  # the answer's header lines, as they came
    sent: Headers = ()  # the request headers of the last POST that went out


class CurlWorkers:
    """``concurrency`` keep-alive libcurl handles driven by the driver's own thread."""

    def __init__(self, config: SenderConfig, poster: Poster) -> None:
        self.config, self.poster = config, poster
        self.secrets = sender_secrets(config)
        self.slots = config.concurrency * PER_WORKER
        self.multi = pycurl.CurlMulti()
        self.fixed = (("Host", urlsplit(config.target).netloc.rpartition("@")[2]),
                      ("User-Agent", f"d1sim/{d1sim.__version__}"), ("Accept", "*/*"))
        self.idle = [self._handle() for _ in range(config.concurrency)]
        self.busy: dict[pycurl.Curl, _Transfer] = {}
        self.waiting: deque[StoredDelivery] = deque()
        self.done: list[Answered] = []

    def start(self) -> None:
        """Nothing to start: transfers run while :meth:`collect` waits."""

    def submit(self, item: StoredDelivery) -> None:
        self.waiting.append(item)
        self._begin_waiting()

    def collect(self, timeout: float | None) -> list[Answered]:
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            self._perform()
            if self.done or not self.busy:
                done, self.done = self.done, []
                return done
            left = _SELECT_SECONDS if until is None else min(until - time.monotonic(), _SELECT_SECONDS)
            if left <= 0:
                return []
            self.multi.select(left)

    def stop(self) -> None:
        self.waiting.clear()
        for handle in list(self.busy):
            self.multi.remove_handle(handle)
        for handle in [*self.busy, *self.idle]:
            handle.close()
        self.busy.clear()
        self.idle.clear()
        self.multi.close()

    # -- transfers ----------------------------------------------------------------------------

    def _handle(self) -> pycurl.Curl:
        config = self.config
        handle = pycurl.Curl()
        handle.setopt(pycurl.URL, config.target)
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.USERAGENT, self.fixed[1][1])  # not libcurl's, which names its build
        handle.setopt(pycurl.TIMEOUT_MS, max(1, int(config.timeout * 1000)))  # the attempt as a whole
        # Straight to the target, as the httpx client does (its own transport: no proxy from the
        # environment); libcurl would otherwise read http_proxy and the like.
        handle.setopt(pycurl.NOPROXY, "*")
        handle.setopt(pycurl.SSL_VERIFYPEER, 1 if config.verify else 0)
        handle.setopt(pycurl.SSL_VERIFYHOST, 2 if config.verify else 0)
        handle.setopt(pycurl.CAINFO, config.ca_cert or certifi.where())
        if config.client_cert:
            handle.setopt(pycurl.SSLCERT, config.client_cert)
            if config.client_key:
                handle.setopt(pycurl.SSLKEY, config.client_key)
        return handle

    def _begin_waiting(self) -> None:
        while self.waiting and self.idle:
            item = self.waiting.popleft()
            handle = self.idle.pop()
            transfer = _Transfer(item, time.time(), time.perf_counter())
            try:
                self._send(handle, transfer)
            except Exception as exc:  # the token endpoint failed (AuthError hides secrets), or a bug
                self.idle.append(handle)
                self._answer(transfer, error=f"{type(exc).__name__}: {exc}", failure=exc)

    def _send(self, handle: pycurl.Curl, transfer: _Transfer) -> None:
        headers = self.poster.headers(transfer.item)
        transfer.authorization = headers.get("Authorization")
        # "Expect:" keeps libcurl from waiting for a 100 Continue before a large body.
        handle.setopt(pycurl.HTTPHEADER, [f"{name}: {value}" for name, value in headers.items()] + ["Expect:"])
        body = transfer.item.delivery.body
        # What libcurl sends: Host, User-Agent and Accept first, ours, then the length it computes.
        transfer.sent = (*self.fixed, *headers.items(), ("Content-Length", str(len(body))))
        handle.setopt(pycurl.POSTFIELDSIZE, len(body))
        handle.setopt(pycurl.POSTFIELDS, body)
        handle.setopt(pycurl.WRITEFUNCTION, lambda chunk: _keep(transfer, chunk))
        # libcurl calls this once per header line: a C method, so no Python frame per line
        # (libcurl bounds an answer's headers as a whole).
        handle.setopt(pycurl.HEADERFUNCTION, transfer.head.extend)
        self.busy[handle] = transfer
        self.multi.add_handle(handle)

    def _perform(self) -> None:
        while self.multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            queued, ok, failed = self.multi.info_read()
            for handle in ok:
                self._finished(handle, None, "")
            for handle, code, message in failed:
                self._finished(handle, code, message)
            if not queued:
                break
        self._begin_waiting()

    def _finished(self, handle: pycurl.Curl, code: int | None, message: str) -> None:
        self.multi.remove_handle(handle)
        transfer = self.busy.pop(handle)
        status = int(handle.getinfo(pycurl.RESPONSE_CODE)) or None
        if code == pycurl.E_WRITE_ERROR and transfer.over:
            code = None  # we stopped reading at the cap: the answer stands, with a warning
        if code is None and status == 401 and not transfer.refreshed and self._refresh(handle, transfer):
            return
        self.idle.append(handle)
        if code is None:
            self._answer(transfer, status=status)
        elif code == pycurl.E_OPERATION_TIMEDOUT:
            self._answer(transfer, error=f"timeout after {self.config.timeout:g} s ({message})")
        else:
            self._answer(transfer, error=f"connection error: {message} (libcurl error {code})",
                         refused=code in _REFUSED)

    def _refresh(self, handle: pycurl.Curl, transfer: _Transfer) -> bool:
        """A 401 to a token we can fetch again: POST once more within the same attempt."""
        if not self.config.auth.on_unauthorized(transfer.authorization):
            return False
        transfer.refreshed, transfer.body, transfer.over, transfer.head = True, bytearray(), False, bytearray()
        try:
            self._send(handle, transfer)
        except Exception as exc:
            self.idle.append(handle)
            self._answer(transfer, error=f"{type(exc).__name__}: {exc}", failure=exc)
        return True

    def _answer(self, transfer: _Transfer, *, status: int | None = None, error: str | None = None,
                failure: BaseException | None = None, refused: bool = False) -> None:
        notes = []
        if transfer.refreshed:
            notes.append("401 answered: token fetched again and the POST repeated once")
        if transfer.over and status is not None:
            notes.append(f"answer body over {BODY_CAP // 1024} KiB: the rest was not read")
        latency = (time.perf_counter() - transfer.begin) * 1000
        content = bytes(transfer.body[:RESPONSE_EXCERPT]) if status is not None else b""
        attempt = Attempt(transfer.started, status, latency, content, error, "; ".join(notes) or None,
                          request_headers=transfer.sent)
        answer = Answer(mask_attempt(attempt, self.secrets), _retry_after(transfer.head), failure, refused)
        self.done.append(Answered(transfer.item, answer))


def _keep(transfer: _Transfer, chunk: bytes) -> Any:
    """Keep the answer up to BODY_CAP; returning 0 beyond it makes libcurl stop reading."""
    room = BODY_CAP - len(transfer.body)
    if len(chunk) > room:
        transfer.body += chunk[:room]
        transfer.over = True
        return 0
    transfer.body += chunk
    return None


def _retry_after(head: bytearray) -> str | None:
    """The Retry-After value of the last answer in ``head`` (after a 100 Continue, the final one)."""
    if b"retry-after" not in head.lower():  # the common case: one cheap look
        return None
    found = None
    for line in bytes(head).split(b"\r\n"):
        if line[:5] == b"HTTP/":
            found = None  # a new status line: start over
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"retry-after":
            found = value.strip().decode("latin-1")
    return found
