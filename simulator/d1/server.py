"""The mock D1 as one object: store, outbox, issuers, planners and dispatcher, and inbound tokens.

No HTTP here: :mod:`d1sim.simulator.d1.app` exposes a :class:`D1Server` as a Flask app.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from d1sim.simulator.d1.config import IssuerSettings, ServerSettings, refuse_remote_urls
from d1sim.simulator.d1.dispatcher import Dispatcher
from d1sim.simulator.d1.issuers import Issuers
from d1sim.simulator.d1.jobs import PlanningJobs
from d1sim.simulator.d1.orders import store_run
from d1sim.simulator.d1.planner import Planner
from d1sim.simulator.d1.store import Store, digest
from d1sim.simulator.d1.uploads import PlannedRun, RunRequest
from d1sim.simulator.delivery.outbox import Outbox


class D1Server:
    """Everything ``d1sim serve`` runs, minus the HTTP listener; ``start``/``stop`` its threads."""

    def __init__(self, settings: ServerSettings, issuers: Iterable[Mapping[str, Any]] = ()) -> None:
        self.settings = settings
        self.outbox = Outbox(settings.db_path)
        self.store = Store(settings.db_path)
        self.issuers = Issuers(self.store)
        self.dispatcher = Dispatcher(self.outbox, self.store, self.issuers, workers=settings.workers)
        self.planner = Planner(
            self.outbox,
            self.store,
            self._max_operations,
            self._target,
            self.dispatcher.reload,
            workers=settings.plan_workers,
        )
        self.jobs = PlanningJobs(
            self._store_run, settings.plan_slots, settings.plan_seconds, processes=settings.plan_workers > 0
        )
        self._tokens: dict[str, tuple[str, float]] = {}  # token hash -> (issuer id, expiry)
        self._token_lock = threading.Lock()
        for raw in issuers:
            self.register(raw)

    def _max_operations(self, issuer_id: str) -> int:
        settings = self.issuers.get(issuer_id)
        return settings.max_operations if settings else 10

    def _target(self, issuer_id: str) -> str:
        settings = self.issuers.get(issuer_id)
        return settings.target if settings else "?"

    def _store_run(self, request: RunRequest, planned: PlannedRun) -> str:
        """Store a run the admin API asked for, whole, and hand it to the dispatcher."""
        options = {"issuerId": request.issuer_id, "scenario": planned.scenario, "seed": planned.seed}
        target = self._target(request.issuer_id)
        run_id = store_run(self.outbox, planned.scenario, target, options, planned.deliveries)
        self.store.add_run(run_id, request.issuer_id, request.start)
        self.dispatcher.reload(run_id)
        return run_id

    def start(self) -> None:
        """Resume every unfinished lifecycle and start planning and sending."""
        self.dispatcher.start()
        self.planner.start()

    def stop(self) -> None:
        """Stop planning and sending (what is owed stays owed), then close the database."""
        self.jobs.stop()
        self.planner.stop()
        self.dispatcher.stop()
        self.store.close()
        self.outbox.close()

    @contextmanager
    def running(self) -> Iterator[D1Server]:
        """``start`` for the ``with`` block, ``stop`` after it."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def register(self, raw: Mapping[str, Any]) -> tuple[IssuerSettings, bool]:
        """Register or update an issuer (and its inbound ``clients``); True when new.

        Raises:
            UsageError: settings that do not check, or (with ``loopback_webhooks``) a webhook
                or token URL that leaves this machine.
        """
        if self.settings.loopback_webhooks:
            refuse_remote_urls(raw)
        settings, created = self.issuers.put(raw)
        for client in raw.get("clients") or ():
            self.store.add_client(settings.issuer_id, client["clientId"], client["clientSecret"])
        self.dispatcher.wake()
        return settings, created

    def issue_token(self, issuer_id: str, scope: str = "") -> dict[str, str]:
        """A bearer token for the inbound API, in D1's token-response shape."""
        token, now = secrets.token_urlsafe(32), time.time()
        expires = now + self.settings.token_ttl
        self.store.add_token(token, issuer_id, expires)
        with self._token_lock:
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
            self._tokens[digest(token)] = (issuer_id, expires)
        at = datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": str(int(self.settings.token_ttl)),
            "scope": scope,
            "expires_at": at.replace("+00:00", "Z"),
        }

    def token_issuer(self, token: str) -> str | None:
        """The issuer a valid, unexpired token was issued to (tokens survive a restart)."""
        with self._token_lock:
            known = self._tokens.get(digest(token))
        if known is None:
            known = self.store.token(token)
        return known[0] if known and known[1] > time.time() else None
