"""End a helper process when the process it works for is gone, even after a SIGKILL.

A planning process of ``d1sim serve`` waits for work for ever; when ``serve`` is killed with
SIGKILL (an OOM killer, ``kill -9``, a CI timeout) nothing tells it to stop. Two watches:

- on Linux, ``PR_SET_PDEATHSIG``: the kernel sends SIGTERM when the parent process ends;
- everywhere, a daemon thread that checks once a ``interval`` whether the parent changed
  (the orphan was adopted) or the watched process is gone, and then exits.

Call :func:`exit_with_parent` first thing in the child, e.g. as a pool's ``initializer``::

    ProcessPoolExecutor(1, initializer=exit_with_parent, initargs=(os.getpid(),))
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_INTERVAL = 0.5


def _ask_kernel_for_a_signal() -> None:
    """Linux only: SIGTERM this process when its parent ends (best effort)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the polling watch below still ends the process


def is_running(pid: int) -> bool:
    """Whether a process ``pid`` exists (a zombie still counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(parent: int, watched: int, interval: float) -> None:
    while os.getppid() == parent and is_running(watched):
        time.sleep(interval)
    os._exit(0)  # noqa: SLF001 -- nothing to clean up: the work belonged to the dead parent


def exit_with_parent(watched: int | None = None, interval: float = WATCH_INTERVAL) -> None:
    """End this process when its parent, or the process ``watched``, is gone.

    ``watched`` is for a grandchild (a forkserver's child) that works for its grandparent.
    """
    parent = os.getppid()
    _ask_kernel_for_a_signal()
    thread = threading.Thread(
        target=_watch, args=(parent, watched or parent, interval), name="d1sim-lifeline", daemon=True
    )
    thread.start()
