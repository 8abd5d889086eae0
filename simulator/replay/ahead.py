"""A replay's writer process started before the replay has loaded its own modules.

``d1sim replay`` spends about half a second importing (the scenario schema, the engine, rich),
and the writer process (:mod:`d1sim.simulator.replay.writer`) as long again (faker, the
lifecycle model). The command line dispatcher calls :func:`start` first thing, from the raw
words, so the two overlap; the first :class:`~d1sim.simulator.replay.writer.Writer` takes the
process, and :func:`release` lets go of one nobody took (it exits at once). Only the light
:mod:`d1sim.simulator.lifeline` is imported here.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence

from d1sim.simulator.lifeline import Child, spawn

MODULE = "d1sim.simulator.replay.writer_entry"
# How long a writer let go gets to end before it is left to the system.
RELEASE_SECONDS = 10.0
_started: list[Child] = []


def start(words: Sequence[str] = ()) -> None:
    """Start a writer process now, unless ``words`` (a ``replay`` command line) show that the
    replay will not stream its plan (``--time-scale`` above 0, an outbox in memory) or will
    not run (``--help``, ``--list``). Best effort: nothing happens where no process can start."""
    if _started or not _will_stream(list(words)):
        return
    with contextlib.suppress(OSError, ValueError):  # ValueError: no pass_fds (Windows)
        _started.append(spawn(MODULE))


def take() -> Child | None:
    """The writer started ahead, if there is one (it is then the taker's)."""
    return _started.pop() if _started else None


def release() -> None:
    """Let go of a writer started ahead that nobody took."""
    while _started:
        child = _started.pop()
        child.inbox.close()  # end of input before any setup: it exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(RELEASE_SECONDS)
        child.said.close()


def _will_stream(words: list[str]) -> bool:
    if any(w in ("-h", "--help", "--list") for w in words):
        return False
    return _value(words, "--time-scale") in (None, "0", "0.0") and _value(words, "--db") != ":memory:"


def _value(words: list[str], option: str) -> str | None:
    for n, word in enumerate(words):
        if word == option and n + 1 < len(words):
            return words[n + 1]
        if word.startswith(option + "="):
            return word.partition("=")[2]
    return None
