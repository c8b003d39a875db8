"""A run killed with SIGKILL leaves Ray's agents of its local instance behind; the next local instance stops them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultkit import descendants, run_command, write_recipe

from corpusmill.pipelines import ray_leftovers


def _start_time(pid: int) -> str | None:
    """A live process's start time (None once it is gone or a zombie): a pid alone may be reused."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def _alive(processes: dict[int, str | None]) -> list[int]:
    return [pid for pid, started in processes.items() if started is not None and _start_time(pid) == started]


@contextlib.contextmanager
def _sleeper(owner: str | None = None, log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A process that carries `owner` in its environment, or holds `log` open (as Ray's agents hold theirs)."""
    env = {**os.environ, **({ray_leftovers.OWNER_VARIABLE: owner} if owner else {})}
    with contextlib.ExitStack() as stack:
        stdout = stack.enter_context(open(log, "ab")) if log else None
        process = subprocess.Popen(["sleep", "120"], env=env, stdout=stdout)
        try:
            yield process
        finally:
            process.kill()
            process.wait()


def _dead_owner() -> str:
    gone = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    token = ray_leftovers.owner_token(gone.pid)
    assert token is not None
    gone.communicate()
    return token


def test_only_processes_whose_owning_run_is_gone_are_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray_leftovers, "registry", lambda: tmp_path / "owners")
    (tmp_path / "owners").mkdir()
    live_owner = ray_leftovers.owner_token()
    assert live_owner is not None
    killed_run = _dead_owner()  # registered, then killed while its instance ran
    (tmp_path / "owners" / killed_run.split(":")[0]).write_text(killed_run)
    session = tmp_path / "ray" / f"session_2026-01-01_00-00-00_000000_{killed_run.split(':')[0]}"
    (session / "logs").mkdir(parents=True)
    with (
        _sleeper(owner=_dead_owner()) as leftover,
        _sleeper(log=session / "logs" / "dashboard_agent.log") as agent,
        _sleeper(owner=live_owner) as running,
    ):
        found = ray_leftovers.find_leftovers()
        assert leftover.pid in found and agent.pid in found and running.pid not in found
        assert {leftover.pid, agent.pid} <= set(ray_leftovers.stop_leftovers())
        assert leftover.wait(timeout=10) == -signal.SIGTERM and agent.wait(timeout=10) == -signal.SIGTERM
        assert running.poll() is None
    assert list((tmp_path / "owners").iterdir()) == []  # the killed run's registration is forgotten


def _agents_of(driver: subprocess.Popen[bytes], timeout_s: float = 60) -> dict[int, str | None]:
    """The dashboard and runtime-env agents of the driver's local Ray instance, once both run."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and driver.poll() is None:
        agents = [pid for pid, args in descendants(driver.pid).items() if args.endswith("Agent")]
        if len(agents) == 2:
            return {pid: _start_time(pid) for pid in agents}
        time.sleep(0.2)
    raise AssertionError("the run's local Ray instance did not start its two agents")


@pytest.mark.ray
def test_agents_of_a_killed_runs_ray_instance_are_gone_once_the_next_run_starts_one(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, files=8, rows=200, words=200)
    driver = subprocess.Popen(
        run_command(recipe, "ray", tmp_path / "run"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    agents: dict[int, str | None] = {}
    try:
        agents = _agents_of(driver)
        driver.kill()  # kill -9 of the run, and of nothing else
        driver.wait()
        time.sleep(2)
        assert _alive(agents) == sorted(agents), "Ray's agents no longer outlive a killed driver"

        from corpusmill.pipelines.ray_engine import RayEngine

        engine = RayEngine(num_cpus=1)
        try:
            assert _alive(agents) == []
        finally:
            engine.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            driver.kill()
        for pid in _alive(agents):  # a failed test leaves no 200 MB behind
            os.kill(pid, signal.SIGKILL)
