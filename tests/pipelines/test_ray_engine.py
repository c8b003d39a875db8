"""The Ray engine's own local instance: its workers are ready, imports done, before the first phase."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray


def probe(hold_s: float) -> tuple[int, bool]:
    """Which worker ran this, and whether the part tasks' modules were already loaded there."""
    loaded = "corpusmill.pipelines.group_tasks" in sys.modules
    time.sleep(hold_s)  # keeps the other probe off this worker
    return os.getpid(), loaded


def test_workers_of_a_local_instance_import_the_task_modules_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Workers unpickle `probe` by reference: they import this module from its folder.
    path = [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    import ray

    from corpusmill.pipelines.ray_engine import RayEngine

    engine = RayEngine(num_cpus=2)
    try:
        remote_probe = ray.remote(num_cpus=1)(probe)
        answers = ray.get([remote_probe.remote(1.0) for _ in range(2)])
    finally:
        engine.close()
    assert len({pid for pid, _ in answers}) == 2 and os.getpid() not in {pid for pid, _ in answers}
    assert all(loaded for _, loaded in answers), answers
