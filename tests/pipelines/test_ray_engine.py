"""The Ray engine's own local instance: its workers are ready, imports done, before the first phase."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultkit import descendants
from worker_probe import arrow_loads, frozen_objects

pytestmark = pytest.mark.ray


def probe(hold_s: float) -> tuple[int, bool, list[str], int]:
    """Which worker ran this, whether the part tasks' modules were loaded there, what Arrow still loads, and
    how many objects the worker froze as it started."""
    loaded = "corpusmill.pipelines.group_tasks" in sys.modules
    time.sleep(hold_s)  # keeps the other probe off this worker
    return os.getpid(), loaded, arrow_loads(), frozen_objects()


def test_workers_of_a_local_instance_load_what_parts_need_at_start(
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
    pids = {answer[0] for answer in answers}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(loaded and not arrow and frozen > 10_000 for _, loaded, arrow, frozen in answers), answers


class WarningTask:
    """A part task that logs a warning per part, as a stage does when a document's extraction times out."""

    def setup(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __call__(self, part: object) -> dict:
        import logging

        logging.getLogger("corpusmill.filters.extract").warning("part %s: extraction timed out", part.name)
        return {"part": part.name, "pid": os.getpid()}


def _instance_processes() -> list[str]:
    """Command lines of this process's descendants (the instance's processes are children of the driver)."""
    return list(descendants(os.getpid()).values())


def test_a_local_instance_runs_without_monitors_and_forwards_part_warnings(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    from corpusmill.pipelines.parts import PartSpec
    from corpusmill.pipelines.ray_engine import RayEngine

    engine = RayEngine(num_cpus=2)
    try:
        processes = _instance_processes()
        parts = [PartSpec(name=f"p{i}", uris=(), fmt="jsonl") for i in range(3)]
        with caplog.at_level("WARNING"):
            results = list(engine.map_parts(WarningTask(), parts))
    finally:
        engine.close()
    assert any("raylet" in command for command in processes), processes  # the instance is this process's
    assert not any("log_monitor.py" in command or "autoscaler" in command for command in processes), processes
    assert sorted(result["part"] for result in results) == ["p0", "p1", "p2"]
    assert all("worker_logs" not in result for result in results)
    forwarded = [r for r in caplog.records if r.name == "corpusmill.filters.extract"]
    assert sorted(r.getMessage() for r in forwarded) == sorted(
        f"[worker pid {result['pid']}] part {result['part']}: extraction timed out" for result in results
    )
    assert not any("raylet" in command for command in _instance_processes()), "close() stops the instance"


def test_a_local_instance_uses_token_authentication_as_ray_init_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ray.init() turns token authentication on for a new local instance unless RAY_AUTH_MODE says otherwise;
    # the instance started without it must be no less protected: its GCS refuses a client without the token.
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    import ray

    from corpusmill.pipelines.ray_engine import RayEngine

    engine = RayEngine(num_cpus=1)
    try:
        assert os.environ.get("RAY_AUTH_MODE") == "token"
        address = ray.get_runtime_context().gcs_address
        script = f"import ray\nray.init(address={address!r}, logging_level='ERROR')\nprint('connected')\n"
        env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_AUTH")}
        client = subprocess.Popen(
            [sys.executable, "-c", script],
            env={**env, "RAY_AUTH_MODE": "disabled"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        seen = []
        try:
            assert client.stdout is not None
            for line in client.stdout:  # the client retries for a while; its first refusal is enough
                seen.append(line)
                if "InvalidAuthToken" in line or "connected" in line:
                    break
        finally:
            client.kill()
            client.wait()
    finally:
        engine.close()
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert seen and "InvalidAuthToken" in seen[-1], "".join(seen)
