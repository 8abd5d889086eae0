"""A progress line every few seconds for long commands, on a terminal or not (CI logs).

A background thread reads a counter and prints ``d1sim validate: 1,234,567 operations
(410,000/s)`` to stderr every ``interval`` seconds; a command that ends sooner prints nothing.
Reading a counter that another thread increments is safe: an int is read whole.

Example::

    >>> import io
    >>> out, done = io.StringIO(), [0]
    >>> with Ticker("d1sim demo", lambda: done[0], "cards", interval=0.01, stream=out):
    ...     done[0] = 5
    ...     import time; time.sleep(0.05)
    >>> out.getvalue().splitlines()[-1].startswith("d1sim demo: 5 cards (")
    True
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

INTERVAL = 5.0


class Ticker:
    """Prints ``label: N unit (rate/s)`` every ``interval`` seconds while the block runs."""

    def __init__(
        self, label: str, count: Callable[[], int], unit: str, *, interval: float = INTERVAL,
        stream: TextIO | None = None, total: Callable[[], int | None] | None = None,
    ) -> None:
        self.label, self.count, self.unit, self.interval = label, count, unit, interval
        self.stream, self.total = stream, total
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="d1sim-ticker", daemon=True)
        self._started = 0.0

    def __enter__(self) -> Ticker:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.emit()

    def emit(self) -> None:
        """Print the current line now."""
        done, seconds = self.count(), max(time.monotonic() - self._started, 1e-9)
        total = self.total() if self.total else None
        of = f"/{total:,}" if total else ""
        stream = self.stream or sys.stderr
        rate = done / seconds
        shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"
        stream.write(f"{self.label}: {done:,}{of} {self.unit} ({shown}/s, {seconds:.0f} s)\n")
        stream.flush()
