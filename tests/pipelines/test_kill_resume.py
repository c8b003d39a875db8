"""A driver killed mid-run (SIGKILL) and the same command run again give the uninterrupted run's bytes, per engine."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from faultkit import outputs, run_command

ENGINES = [
    pytest.param("local"),
    pytest.param("ray", marks=pytest.mark.ray),
    pytest.param("beam", marks=pytest.mark.beam),
]
WORDS = [f"w{n}" for n in range(3000)]


def _corpus(directory: Path) -> None:
    rng = random.Random(4)
    directory.mkdir(parents=True)
    for index in range(8):
        rows = []
        for line in range(40):
            words = " ".join(rng.choice(WORDS) for _ in range(80))
            rows.append({"id": line, "text": f"The report number {index}-{line} says {words}."})
        rows.append(dict(rows[3]))  # an exact duplicate in every file
        (directory / f"f{index}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _recipe(tmp_path: Path) -> Path:
    recipe = {
        "name": "killed",
        "input": {"paths": [str(tmp_path / "in" / "*.jsonl")], "part_bytes": 1},
        "stages": [
            {"stage": "dedup_exact"},
            {"stage": "dedup_minhash", "threshold": 0.8},
            {"stage": "tokenize"},
            {"stage": "write_shards", "max_tokens_per_shard": 4000, "heldout_fraction": 0.1},
        ],
        "output": {"batch_size": 16},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _kill_after_first_marker(command: list[str], run_dir: Path, timeout: float = 240) -> None:
    """Start the run, SIGKILL its whole process group once a part of a later step has finished."""
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if list((run_dir / "stages").glob("02-*/*.done.json")) or process.poll() is not None:
                break
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode() if process.stderr else ""
    assert not (run_dir / "manifest.json").exists(), "the run finished before it could be killed"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_killed_run_resumed_equals_an_uninterrupted_one(tmp_path: Path, engine: str) -> None:
    _corpus(tmp_path / "in")
    recipe = _recipe(tmp_path)
    reference = tmp_path / "reference"
    subprocess.run(run_command(recipe, "local", reference), check=True, capture_output=True)
    run_dir = tmp_path / "killed"
    _kill_after_first_marker(run_command(recipe, engine, run_dir), run_dir)
    subprocess.run(run_command(recipe, engine, run_dir), check=True, capture_output=True)
    expected, found = outputs(reference), outputs(run_dir)
    assert sorted(found) == sorted(expected)
    for name, data in expected.items():
        assert found[name] == data, name
    verify = subprocess.run(
        [sys.executable, "-m", "corpusmill.cli", "verify", str(run_dir)], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
