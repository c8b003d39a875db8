"""The engine-overhead bench measures an engine in a process of its own and prints what it found."""

from __future__ import annotations

import time
from pathlib import Path

from bench.engine_overhead import SleepTask, format_rows, measure

from corpusmill.pipelines.parts import PartSpec


def test_sleep_task_sleeps_once_per_part(tmp_path: Path) -> None:
    task, part = SleepTask(0.3, str(tmp_path)), PartSpec("part-0", (), "none")
    started = time.monotonic()
    assert task(part) == {"part": "part-0"}
    first = time.monotonic() - started
    assert task(part) == {"part": "part-0"}  # an engine reading a finished part's result back
    assert first >= 0.3 and time.monotonic() - started - first < 0.2


def test_local_engine_is_measured_in_a_child_process() -> None:
    row = measure("local", cores=1, phases=3, sleep_s=1.5, timeout_s=120)
    assert "error" not in row, row.get("error")
    assert row["engine"] == "local" and row["cores"] == 1
    # The in-process engine adds nothing measurable: no processes to start, phases are plain calls.
    assert 0.0 <= row["start_cpu_s"] < 0.5 and 0.0 <= row["phase_cpu_s"] < 0.05
    assert 0.0 <= row["background_cpu_per_s"] < 0.1 and row["stop_cpu_s"] >= 0.0
    text = format_rows([row, {"engine": "ray", "error": "exit 1: cannot start"}])
    assert text.splitlines()[1].startswith("local") and "ray     FAILED: exit 1: cannot start" in text


def test_an_engine_that_fails_is_reported_not_raised() -> None:
    row = measure("no-such-engine", cores=1, phases=1, sleep_s=0.1, timeout_s=120)
    assert row["engine"] == "no-such-engine" and "unknown engine" in row["error"]
