"""Registered issuers in memory: their settings and their virtual clocks, saved to the store.

Each issuer has its own clock, in virtual Unix seconds. It runs ``timeScale`` virtual seconds
per real second (at scale 0 it runs in real time, and deliveries ignore their ``due``), stands
still while the issuer is paused and while the server is down, and jumps on ``advance``. A
lifecycle's notification is due when the clock reaches the order's start plus the planned
offset, so one clock reading decides every lane of the issuer.

Example::

    >>> clock = VirtualClock(virtual=1000.0, anchor=0.0, scale=60.0)
    >>> clock.now(2.0), clock.real_time_of(1240.0, 2.0)
    (1120.0, 4.0)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from d1sim.simulator.d1.config import IssuerSettings
from d1sim.simulator.d1.store import Store

# The dispatcher saves clock readings at most this often (a restart loses at most this much).
CHECKPOINT_EVERY = 1.0
# Virtual times become datetimes (payloads, answers): keep clear of the year 9999.
LATEST = datetime(9900, 1, 1, tzinfo=UTC).timestamp()


@dataclass(slots=True)
class VirtualClock:
    """An issuer's clock: ``virtual`` was the reading at real time ``anchor``."""

    virtual: float
    anchor: float
    scale: float
    paused: bool = False

    @property
    def rate(self) -> float:
        """Virtual seconds per real second (scale 0 means 'no waiting', not 'time stands still')."""
        return self.scale if self.scale > 0 else 1.0

    def now(self, real: float) -> float:
        """The virtual time at real time ``real``."""
        return self.virtual if self.paused else self.virtual + (real - self.anchor) * self.rate

    def rebase(self, real: float) -> None:
        """Re-anchor at ``real`` (before changing rate or pausing, so no time is lost)."""
        self.virtual, self.anchor = self.now(real), real

    def real_time_of(self, moment: float, real: float) -> float:
        """When (real time) the clock reads ``moment``; infinity while paused."""
        if self.paused:
            return float("inf")
        return real + max(moment - self.now(real), 0.0) / self.rate


class Issuers:
    """The registered issuers, their settings and clocks; thread-safe, persisted in ``store``."""

    def __init__(self, store: Store, real: Callable[[], float] = time.time) -> None:
        self.store, self.real = store, real
        self._lock = threading.RLock()
        self._settings: dict[str, IssuerSettings] = {}
        self._clocks: dict[str, VirtualClock] = {}
        self._saved = 0.0
        now = real()
        for record in store.issuers():
            settings = IssuerSettings(record.issuer_id, record.settings)
            self._settings[record.issuer_id] = settings
            # The clock stood still while the server was down: resume from the saved reading.
            self._clocks[record.issuer_id] = VirtualClock(record.virtual, now, settings.time_scale, record.paused)

    def get(self, issuer_id: str) -> IssuerSettings | None:
        """An issuer's settings, or None."""
        return self._settings.get(issuer_id)

    def all(self) -> list[IssuerSettings]:
        """Every issuer, by id."""
        with self._lock:
            return [self._settings[k] for k in sorted(self._settings)]

    def put(self, raw: Mapping[str, Any]) -> tuple[IssuerSettings, bool]:
        """Register or update an issuer from raw settings; True when it is new.

        Raises:
            SettingsError: the settings are invalid (the message names the field).
        """
        with self._lock:
            previous = self._settings.get(str(raw.get("issuerId")))
            settings = IssuerSettings.parse(raw, previous)
            now = self.real()
            clock = self._clocks.get(settings.issuer_id)
            if clock is None:
                clock = self._clocks[settings.issuer_id] = VirtualClock(now, now, settings.time_scale)
            clock.rebase(now)
            clock.scale = settings.time_scale
            created = self.store.put_issuer(settings.issuer_id, dict(settings.data), clock.virtual)
            self._settings[settings.issuer_id] = settings
            self._save(settings.issuer_id)
            return settings, created

    def now(self, issuer_id: str) -> float:
        """The issuer's virtual time now."""
        with self._lock:
            return self._clocks[issuer_id].now(self.real())

    def clock(self, issuer_id: str) -> VirtualClock:
        """A copy of the issuer's clock (safe to read outside the lock)."""
        with self._lock:
            c = self._clocks[issuer_id]
            return VirtualClock(c.virtual, c.anchor, c.scale, c.paused)

    def set_paused(self, issuer_id: str, paused: bool) -> None:
        """Pause (the clock stops, nothing is sent) or resume an issuer."""
        with self._lock:
            clock = self._clocks[issuer_id]
            clock.rebase(self.real())
            clock.paused = paused
            self._save(issuer_id)

    def advance(self, issuer_id: str, seconds: float) -> float:
        """Move the issuer's clock forward; return the new virtual time."""
        with self._lock:
            clock = self._clocks[issuer_id]
            clock.rebase(self.real())
            if clock.virtual + seconds > LATEST:
                raise ValueError("the clock would run past what payload dates can show")
            clock.virtual += seconds
            self._save(issuer_id)
            return clock.virtual

    def checkpoint(self, force: bool = False) -> None:
        """Save every clock reading, at most once per CHECKPOINT_EVERY unless forced."""
        with self._lock:
            if not force and self.real() - self._saved < CHECKPOINT_EVERY:
                return
            for issuer_id in self._clocks:
                self._save(issuer_id)
            self._saved = self.real()

    def _save(self, issuer_id: str) -> None:
        clock = self._clocks[issuer_id]
        self.store.save_clock(issuer_id, clock.now(self.real()), clock.paused)
