"""Planning one thread ahead: same items, same order, errors where they happened, no stray thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from d1sim.simulator.replay.planning import prefetched


def test_items_come_in_order_across_chunks() -> None:
    assert list(prefetched(iter(range(1003)), chunk=10, depth=2)) == list(range(1003))
    assert list(prefetched(iter([]))) == []


def test_an_error_in_the_source_is_raised_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield from range(25)
        raise ValueError("bad scenario at item 25")

    got = []
    with pytest.raises(ValueError, match="item 25"):
        for item in prefetched(source(), chunk=10):
            got.append(item)
    assert got == list(range(20))  # the last partial chunk never reached the consumer


def test_abandoning_the_stream_stops_the_background_thread() -> None:
    produced = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    stream = prefetched(endless(), chunk=5, depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    deadline = time.monotonic() + 5
    while any(t.name == "d1sim-planner" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "d1sim-planner" for t in threading.enumerate())
    assert len(produced) <= 5 * (2 + 2)  # bounded read-ahead: depth chunks queued, one in hand
