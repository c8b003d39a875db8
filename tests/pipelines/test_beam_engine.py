"""The Beam engine's worker pool: every phase runs on Beam's runner, in worker processes that outlive phases."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from worker_probe import arrow_loads, frozen_objects

from corpusmill.pipelines.parts import PartSpec

pytestmark = pytest.mark.beam


@pytest.fixture(autouse=True)
def _importable_test_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes unpickle the tasks below by reference: they import this module from its folder."""
    path = [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))


@dataclass
class _WhereTask:
    """Writes which process ran each part and how often its task was set up there; returns that record."""

    out_dir: Path
    phase: str
    setups: int = 0

    def setup(self) -> None:
        self.setups += 1

    def close(self) -> None:
        pass

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        marker = self.out_dir / f"{self.phase}-{part.name}.json"
        if marker.exists():
            return json.loads(marker.read_text())
        result = {
            "part": part.name,
            "pid": os.getpid(),
            "setups": self.setups,
            "arrow_loads": arrow_loads(),
            "frozen": frozen_objects(),
        }
        marker.write_text(json.dumps(result))
        return result


def test_phases_share_long_lived_worker_processes_and_a_dead_one_is_replaced(tmp_path: Path) -> None:
    from corpusmill.pipelines.beam_engine import BeamEngine

    parts = [PartSpec(f"part-{i}", (), "none") for i in range(4)]
    engine = BeamEngine(num_cpus=2)
    try:
        first = list(engine.map_parts(_WhereTask(tmp_path, "first"), parts))
        second = list(engine.map_parts(_WhereTask(tmp_path, "second"), parts))
        processes = list(engine._pool._processes)
        processes[0].kill()
        processes[0].wait()
        third = list(engine.map_parts(_WhereTask(tmp_path, "third"), parts))
        replaced = list(engine._pool._processes)
    finally:
        engine.close()
    for results in (first, second, third):
        assert sorted(r["part"] for r in results) == [p.name for p in parts]
        assert all(r["setups"] == 1 for r in results)  # once per worker and phase (DoFn setup)
        # Every worker, the replacement too, loaded what a part needs at its start, not in its first part.
        assert all(r["arrow_loads"] == [] and r["frozen"] > 10_000 for r in results), results
    pids = {p.pid for p in processes}
    assert os.getpid() not in pids
    assert {r["pid"] for r in first} == pids  # the runner spreads a phase's parts over every worker
    assert {r["pid"] for r in second} == pids
    assert replaced[0].pid != processes[0].pid and replaced[1] is processes[1]
    assert {r["pid"] for r in third} <= {p.pid for p in replaced}
    assert all(p.poll() == 0 for p in replaced)  # close() ended them, cleanly


def test_one_worker_runs_in_process_on_the_fn_api_runner_without_trying_prism(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from corpusmill.pipelines.beam_engine import BeamEngine

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where Beam would make its job server's directory
    parts = [PartSpec(f"part-{i}", (), "none") for i in range(3)]
    out = tmp_path / "out"
    out.mkdir()
    with BeamEngine(num_cpus=1) as engine:
        assert engine._pool is None
        results = list(engine.map_parts(_WhereTask(out, "only"), parts))
    assert sorted(r["part"] for r in results) == [p.name for p in parts]
    assert {r["pid"] for r in results} == {os.getpid()}  # in this process: no worker processes
    # Named as DirectRunner, Beam would first start a Prism job server, leaving a beam-temp* directory.
    assert not list(scratch.glob("beam-temp*"))


def test_a_worker_process_that_cannot_start_fails_the_engine_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from corpusmill.pipelines import beam_engine

    monkeypatch.setattr(beam_engine, "_WORKER_COMMAND", "import sys; sys.exit(3)")
    with pytest.raises(RuntimeError, match=r"exited at start with status 3"):
        beam_engine.BeamEngine(num_cpus=2)


@dataclass
class _UnsharedStorageTask:
    """Writes each part's marker under a directory of the process that ran it: storage the driver cannot see."""

    base: Path

    def setup(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        from corpusmill.pipelines.parts import _finish, _finished

        directory = self.base / str(os.getpid())
        done = _finished(directory, part)
        if done is not None:
            return done
        directory.mkdir(parents=True, exist_ok=True)
        return _finish(directory, part, None, 0, {}, pid=os.getpid())


def test_parts_whose_results_the_driver_cannot_see_fail_instead_of_running_on_the_driver(
    tmp_path: Path,
) -> None:
    from corpusmill.pipelines.beam_engine import BeamEngine

    parts = [PartSpec(f"part-{i}", (), "none") for i in range(2)]
    with BeamEngine(num_cpus=2) as engine, pytest.raises(RuntimeError, match="share") as failure:
        list(engine.map_parts(_UnsharedStorageTask(tmp_path), parts))
    assert "part-0.done.json" in str(failure.value)
    assert not (tmp_path / str(os.getpid())).exists()  # nothing was computed on the driver


@dataclass
class _FailingTask(_WhereTask):
    """Raises on one named part; the other parts run as `_WhereTask` runs them."""

    failing: str = ""

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        if part.name == self.failing:
            raise ValueError(f"bad part {part.name}")
        return super().__call__(part)


def test_a_failed_phase_leaves_the_engine_ready_for_the_next(tmp_path: Path) -> None:
    """Every phase on this machine runs the same pipeline, reading its task from the engine's phase files:
    a phase that fails does not stop the next, which runs its own task, and the files go at close."""
    from corpusmill.pipelines.beam_engine import BeamEngine

    parts = [PartSpec(f"part-{i}", (), "none") for i in range(3)]
    engine = BeamEngine(num_cpus=2)
    try:
        with pytest.raises(ValueError, match="bad part part-1"):
            list(engine.map_parts(_FailingTask(tmp_path, "failing", failing="part-1"), parts))
        after = list(engine.map_parts(_WhereTask(tmp_path, "after"), parts))
        assert engine._phases is not None
        phase_files = engine._phases.directory
        assert phase_files.is_dir()
    finally:
        engine.close()
    assert sorted(r["part"] for r in after) == [p.name for p in parts]
    assert all(r["setups"] == 1 for r in after)
    assert not phase_files.exists()


def test_a_phase_with_one_part_starts_one_worker(tmp_path: Path) -> None:
    from corpusmill.pipelines.beam_engine import BeamEngine

    with BeamEngine(num_cpus=2) as engine:
        assert engine._pool is not None
        list(engine.map_parts(_WhereTask(tmp_path, "one"), [PartSpec("part-0", (), "none")]))
        one = engine._pool._next
        list(
            engine.map_parts(
                _WhereTask(tmp_path, "two"), [PartSpec(f"part-{i}", (), "none") for i in range(4)]
            )
        )
        two = engine._pool._next - one
    assert (one, two) == (1, 2)  # harnesses the runner asked the pool for


def test_phase_files_of_an_engine_killed_before_it_closed_are_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys
    import tempfile

    from corpusmill.pipelines.beam_engine import BeamEngine

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    orphan = tmp_path / f"corpusmill-beam-phase-{int(gone.stdout)}-abc"
    alive = tmp_path / f"corpusmill-beam-phase-{os.getpid()}-abc"
    for directory in (orphan, alive):
        directory.mkdir()
        (directory / "task.pickle").write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    with BeamEngine(num_cpus=2) as engine:
        list(engine.map_parts(_WhereTask(out, "one"), [PartSpec("part-0", (), "none")]))
    assert not orphan.exists()
    assert alive.exists()  # this process is alive: its directory is not an orphan
