"""End a helper process when the process it works for is gone, even after a SIGKILL.

A planning process of ``d1sim serve`` waits for work for ever; when ``serve`` is killed with
SIGKILL (an OOM killer, ``kill -9``, a CI timeout) nothing tells it to stop. Two watches:

- on Linux, ``PR_SET_PDEATHSIG``: the kernel sends SIGTERM when the parent process ends;
- everywhere, a daemon thread that checks once a ``interval`` whether the parent changed
  (the orphan was adopted) or the watched process is gone, and then exits.

Call :func:`exit_with_parent` first thing in the child, e.g. as a pool's ``initializer``::

    ProcessPoolExecutor(1, initializer=exit_with_parent, initargs=(os.getpid(),))

:func:`spawn` starts a helper as ``python -m module`` with two pipes: not a fork (an SQLite
connection must not cross one) and not ``multiprocessing``'s spawn (which would import the
user's own main module again).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import d1sim

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


@dataclass
class Child:
    """A helper process and its two pipes: ``inbox`` to write to it, ``said`` to read from it."""

    process: subprocess.Popen[bytes]
    inbox: Connection
    said: Connection


# Linux's fcntl to resize a pipe (F_SETPIPE_SZ), and the size asked for: room for a few hand-overs,
# so neither side waits for the other to read (the default is 64 KiB).
_SETPIPE_SZ, PIPE_BYTES = 1031, 1 << 20


def _widen(fd: int) -> None:
    """Best effort: a pipe of PIPE_BYTES where the system allows it."""
    with contextlib.suppress(OSError, AttributeError):
        import fcntl

        fcntl.fcntl(fd, _SETPIPE_SZ, PIPE_BYTES)


def spawn(module: str) -> Child:
    """Start ``python -m module INBOX_FD SAID_FD`` with this d1sim; OSError if it cannot start.

    The child reads pickled messages from the first descriptor and writes to the second
    (``multiprocessing.connection.Connection`` on each); its stdin and stdout are closed.
    """
    read_in, write_in = os.pipe()
    read_out, write_out = os.pipe()
    for fd in (write_in, write_out):
        _widen(fd)
    home = str(Path(d1sim.__file__).resolve().parent.parent)  # the same d1sim in the child
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [home, os.environ.get("PYTHONPATH")]))}
    try:
        process = subprocess.Popen([sys.executable, "-m", module, str(read_in), str(write_out)],
                                   pass_fds=(read_in, write_out), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, env=env)
    except OSError:
        os.close(write_in)
        os.close(read_out)
        raise
    finally:
        os.close(read_in)  # the child's ends: it has its own copies
        os.close(write_out)
    return Child(process, Connection(write_in, readable=False), Connection(read_out, writable=False))
