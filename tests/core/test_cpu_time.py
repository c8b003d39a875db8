"""CPU time of this process and its live children, as a stage's set-up is measured."""

from __future__ import annotations

import subprocess
import sys
import time

from corpusmill.core.cpu_time import tree_cpu_seconds

BURN_THEN_WAIT = (
    "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\ntime.sleep(30)"
)


def test_a_live_child_counts_and_the_total_never_falls() -> None:
    before = tree_cpu_seconds()
    assert before >= time.process_time() - 0.05
    child = subprocess.Popen([sys.executable, "-c", BURN_THEN_WAIT])
    try:
        deadline = time.monotonic() + 20
        while tree_cpu_seconds() - before < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        # The child burnt half a CPU-second that this process did not.
        assert tree_cpu_seconds() - before >= 0.5
        assert time.process_time() - before < 0.4
    finally:
        child.kill()
        child.wait()
