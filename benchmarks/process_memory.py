"""How much memory a process and its children hold: Linux ``/proc``, sampled while they run.

RSS counts every page a process maps, so pages that forked workers share with their parent
count once per process; PSS divides each shared page between the processes that share it, so
summed over processes it is the memory they hold together.

Example::

    >>> import subprocess, sys
    >>> child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    >>> rss, pss = sample_memory(child)
    >>> rss >= pss >= 0, child.wait()
    (True, 0)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path


def sample_memory(process: subprocess.Popen[bytes]) -> tuple[float, float]:
    """Until ``process`` ends: the peaks of RSS and of PSS summed over it and its children."""
    peak_rss = peak_pss = 0
    while not has_ended(process.pid):
        totals = [proc_memory(pid) for pid in [process.pid, *proc_children(process.pid)]]
        peak_rss = max(peak_rss, sum(rss for rss, _ in totals))
        peak_pss = max(peak_pss, sum(pss for _, pss in totals))
        time.sleep(0.1)
    return peak_rss / 1024, peak_pss / 1024


def has_ended(pid: int) -> bool:
    """Whether the child ``pid`` has ended, without reaping it (its caller may wait4 it)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def proc_children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux ``/proc``; none elsewhere)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def proc_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of ``pid`` in kB, 0 when it is gone or ``/proc`` does not tell."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
        )
        return int(fields["Rss"].split()[0]), int(fields["Pss"].split()[0])
    return 0, 0
