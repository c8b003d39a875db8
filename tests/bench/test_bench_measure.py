"""Process-tree CPU accounting: work done by an auto-reaped grandchild still counts, and spans line up."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.measure import TreeSampler, descendants, read_proc

# The child ignores SIGCHLD, so the kernel reaps its worker at exit and never adds the worker's CPU time to
# the child's `cutime`: only sampling the tree while the worker runs can see it (Ray reaps its workers so).
CHILD = """
import signal, subprocess, sys, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
worker = subprocess.Popen([sys.executable, "-c", "import time\\nend = time.process_time() + 0.8\\nwhile time.thread_time() < end: pass"])
time.sleep(0.2)
while worker.poll() is None:
    time.sleep(0.05)
print("start", flush=True)
time.sleep(0.6)
"""


def test_cpu_of_a_reaped_grandchild_is_counted_and_never_decreases() -> None:
    process = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    with TreeSampler(process.pid, interval_s=0.05) as sampler:
        process.wait(timeout=60)
    assert sampler.peak_processes >= 2 and sampler.peak_rss > 1_000_000
    assert all(later >= earlier for earlier, later in itertools.pairwise(sampler.cpu))
    total = sampler.cpu_between(sampler.times[0], sampler.times[-1])
    assert total >= 0.6  # the worker's 0.8 s, less what fell after its last sample


def test_descendants_follow_parent_links() -> None:
    table = read_proc()
    assert os.getpid() in descendants(os.getppid(), table) or os.getppid() not in table
    assert descendants(-12345, table) == []


# Run in a fresh process, so that the sampled tree holds only this work (a test process may still have
# children of earlier tests winding down, whose CPU time would land in the idle span).
SPANS = """
import json, os, time
from bench.measure import Clock, TreeSampler, cost

clock = Clock()
with TreeSampler(os.getpid(), interval_s=0.02) as sampler:
    with clock.span("busy"):
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass
    with clock.span("idle"):
        time.sleep(0.3)
    with clock.span("busy"):
        end = time.thread_time() + 0.2
        while time.thread_time() < end:
            pass
print(json.dumps({name: cost(sampler, spans) | {"count": len(spans)} for name, spans in clock.spans.items()}))
"""


def test_span_costs_add_intervals() -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", SPANS], cwd=root, capture_output=True, text=True, check=True)
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    busy, idle = spans["busy"], spans["idle"]
    assert busy["count"] == 2
    assert 0.4 <= busy["cpu_s"] <= 0.9 and busy["wall_s"] >= 0.5
    assert idle["cpu_s"] < 0.15 and idle["wall_s"] >= 0.3
