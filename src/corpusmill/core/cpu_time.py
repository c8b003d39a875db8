"""CPU time of this process together with its live child processes.

A stage's set-up may start helper processes (the extraction sandbox starts a fresh interpreter that imports
trafilatura), and what the set-up costs is the CPU of both. `time.process_time()` sees only this process,
and the `children` fields of `os.times()` only children that have exited and been waited for, so on Linux
the tree is read from `/proc`: this process, then every descendant found through each thread's `children`
list. Whatever else those descendants do meanwhile counts too; in an engine's worker process the only ones
are the stages' own. Elsewhere (or where `/proc` lacks those lists) it falls back to `time.process_time()`,
which leaves out the CPU of the processes a set-up starts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _own_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process (all its threads), or None if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()  # the command name may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _children(pid: int) -> list[int]:
    """Direct children of a process, from every thread's `children` list."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:
        try:
            found.extend(int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
        except OSError:
            continue
    return found


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and by every live descendant of it."""
    me = os.getpid()
    own = _own_cpu_seconds(me)
    if own is None or not Path(f"/proc/{me}/task/{me}/children").exists():
        return time.process_time()
    total, stack, seen = own, _children(me), {me}
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        cpu = _own_cpu_seconds(pid)
        if cpu is not None:
            total += cpu
            stack.extend(_children(pid))
    return total
