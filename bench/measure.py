"""CPU time and resident memory of a whole process tree, sampled from /proc by a process outside the tree.

Engines spread work over many processes (Ray's raylet and workers, Beam's SDK harnesses, datatrove's pool,
the extraction sandboxes), so a process's own CPU time says little, and the usual shortcut (a process's
`cutime`, the time of children it reaped) loses every process that is reaped by a parent ignoring SIGCHLD or
outside the tree, as Ray's workers are. So the benchmark's parent process samples the job's tree every
0.1 s and keeps, for every process it has ever seen (keyed by pid and start time, so reused pids are not
confused), the latest user + system time it read. The tree's cumulative CPU time at any moment is the sum
over all of them; it only grows. What a sampler cannot see is CPU spent after a process's last sample
(under 0.1 s each) and processes that live less than one interval, so the figure is a slight lower bound.

The job itself only marks moments (`Clock`, monotonic time shared by all processes); the cost of a span is
the cumulative CPU at its end minus at its start, interpolated between samples. The job makes itself a
child subreaper, so processes orphaned by a dying parent are re-parented to it and stay in the tree.
Memory is the sum of RSS over the tree at each sample: pages shared between processes (fork copy-on-write,
Ray's shared-memory object store) count once per process, so the peak is an upper bound. Linux only.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from corpusmill.core.cpu_time import stat_cpu_seconds, stat_fields

_PR_SET_CHILD_SUBREAPER = 36


def _sysconf(name: str, default: int) -> int:
    try:
        return int(os.sysconf(name))
    except (ValueError, OSError):
        return default


PAGE_SIZE = _sysconf("SC_PAGE_SIZE", 4096)


@dataclass(frozen=True)
class ProcStat:
    """What one /proc/<pid>/stat says that the sampler needs."""

    parent: int
    started: int  # clock ticks after boot; with the pid, identifies the process
    own_cpu_s: float  # user + system time of the process itself
    rss_bytes: int


def read_proc() -> dict[int, ProcStat]:
    """Every visible process's stat line, parsed."""
    table: dict[int, ProcStat] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue  # the process exited between listing and reading
        fields = stat_fields(raw)
        own = stat_cpu_seconds(fields)
        table[int(entry)] = ProcStat(int(fields[1]), int(fields[19]), own, int(fields[21]) * PAGE_SIZE)
    return table


def descendants(root: int, table: dict[int, ProcStat]) -> list[int]:
    """`root` and every process below it in `table`."""
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(stat.parent, []).append(pid)
    found, stack = [], [root] if root in table else []
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


@dataclass
class TreeSampler:
    """Samples a process tree on a background thread: cumulative CPU over time, peak RSS, peak process count."""

    root: int
    interval_s: float = 0.1
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak_rss: int = 0
    peak_processes: int = 0
    seen: dict[tuple[int, int], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def sample(self) -> None:
        """One look at the tree."""
        table = read_proc()
        now = time.monotonic()
        pids = descendants(self.root, table)
        rss = 0
        for pid in pids:
            stat = table[pid]
            key = (pid, stat.started)
            self.seen[key] = max(self.seen.get(key, 0.0), stat.own_cpu_s)
            rss += stat.rss_bytes
        self.times.append(now)
        self.cpu.append(sum(self.seen.values()))
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_processes = max(self.peak_processes, len(pids))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            with contextlib.suppress(Exception):  # a vanished process must not end the sampling
                self.sample()

    def cpu_at(self, moment: float) -> float:
        """Cumulative CPU seconds of the tree at a monotonic time, interpolated between samples."""
        if not self.times:
            return 0.0
        i = bisect.bisect_left(self.times, moment)
        if i == 0:
            return self.cpu[0]
        if i >= len(self.times):
            return self.cpu[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        share = (moment - t0) / (t1 - t0) if t1 > t0 else 1.0
        return self.cpu[i - 1] + share * (self.cpu[i] - self.cpu[i - 1])

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds the tree spent between two monotonic times."""
        return max(0.0, self.cpu_at(end) - self.cpu_at(start))


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux), so they stay in this tree; False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(wait_s: float = 5.0) -> None:
    """Collect adopted children that exited (or exit within `wait_s`)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


@dataclass(frozen=True)
class Mark:
    """A named moment of a job (monotonic seconds, comparable across processes)."""

    name: str
    at: float


class Clock:
    """Named marks along a job and named spans between them; the sampler outside turns spans into CPU."""

    def __init__(self) -> None:
        self.marks: list[Mark] = []
        self.spans: dict[str, list[tuple[float, float]]] = {}

    def mark(self, name: str) -> Mark:
        """Record a moment."""
        mark = Mark(name, time.monotonic())
        self.marks.append(mark)
        return mark

    def add(self, name: str, start: Mark, end: Mark) -> None:
        """Count the interval between two marks towards span `name` (a span may have many intervals)."""
        self.spans.setdefault(name, []).append((start.at, end.at))

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        """Measure the block as (part of) span `name`."""
        start = Mark(f"{name}:start", time.monotonic())
        yield
        self.add(name, start, Mark(f"{name}:end", time.monotonic()))

    def at(self, name: str) -> float:
        """The moment of the named mark."""
        return next(m.at for m in self.marks if m.name == name)


def cost(sampler: TreeSampler, intervals: list[tuple[float, float]]) -> dict[str, float]:
    """Wall and CPU seconds of a span's intervals."""
    return {
        "wall_s": sum(end - start for start, end in intervals),
        "cpu_s": sum(sampler.cpu_between(start, end) for start, end in intervals),
    }
