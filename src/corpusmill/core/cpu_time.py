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


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100


CLOCK_TICKS = _clock_ticks()


def stat_fields(raw: bytes) -> list[bytes]:
    """The fields of a `/proc/<pid>/stat` line after the command name (so field 0 is the state).

    The command name sits in parentheses and may itself hold spaces and parentheses, hence the last `)`.
    """
    return raw[raw.rfind(b")") + 2 :].split()


def stat_cpu_seconds(fields: list[bytes]) -> float:
    """User + system CPU seconds of the process (all its threads) that `stat_fields` came from."""
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _own_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process, or None if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat_cpu_seconds(stat_fields(raw))


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
