"""How many clients d1sim's servers hold, and for how long: limits that keep them answering.

waitress's defaults stop accepting at 100 open connections and keep an idle one for two
minutes, so a hundred idle sockets silence a server. d1sim holds many more connections, closes
idle ones sooner, and gives each request a deadline for arriving *whole*: a client trickling its
headers one byte at a time keeps the connection active for waitress, yet is cut when the
deadline passes. Slow clients cost a socket each, never a worker thread (waitress hands a
request to a thread only once it has arrived), so normal requests are served meanwhile.

Example::

    >>> connection_limits(ConnectionLimits(connections=500))["connection_limit"]
    500
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

FD_HEADROOM = 64  # descriptors kept for the database, log files and outgoing POSTs


@dataclass(frozen=True)
class ConnectionLimits:
    """What a d1sim server tolerates from its clients (whole seconds: waitress takes ints)."""

    connections: int = 1000  # open client connections at once (waitress default: 100)
    idle_timeout: int = 30  # an idle keep-alive or silent connection is closed after this
    request_deadline: int = 30  # a request's headers and body must all arrive within this
    cleanup_interval: int = 5  # how often idle connections are looked for
    header_bytes: int = 64 * 1024  # request line and headers
    body_bytes: int = 32 * 1024 * 1024  # above every app's own limit (16 MiB): a last backstop


DEFAULT_LIMITS = ConnectionLimits()


def _descriptor_room() -> int:
    """Connections the process's open-file limit leaves room for."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft - FD_HEADROOM if soft != resource.RLIM_INFINITY else 1 << 20


def connection_limits(limits: ConnectionLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """waitress adjustments for ``limits`` (the connection count bounded by the fd limit)."""
    return {
        "connection_limit": max(1, min(limits.connections, _descriptor_room())),
        "channel_timeout": limits.idle_timeout,
        "cleanup_interval": limits.cleanup_interval,
        "max_request_header_size": limits.header_bytes,
        "max_request_body_size": limits.body_bytes,
    }


class DeadlineChannel(HTTPChannel):  # type: ignore[misc]
    """A waitress channel that closes when a request takes longer than its deadline to arrive."""

    request_deadline: float = DEFAULT_LIMITS.request_deadline
    _began = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self._began = time.monotonic()
        return bool(super().received(data))

    def readable(self) -> bool:
        # Checked on every turn of the event loop, so a stalled partial request is cut too.
        if self.request is not None and time.monotonic() - self._began > self.request_deadline:
            self.will_close = True
        return bool(super().readable())


def guard_channels(socket_map: dict[int, Any], limits: ConnectionLimits = DEFAULT_LIMITS) -> None:
    """Make every waitress server in ``socket_map`` open :class:`DeadlineChannel` connections."""
    channel = type("BoundChannel", (DeadlineChannel,), {"request_deadline": limits.request_deadline})
    for dispatcher in list(socket_map.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = channel
