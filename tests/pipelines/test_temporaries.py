"""Half-written files of a killed run: a resume removes them (and nothing else), and `verify` reports any left."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import outputs, reference_outputs, write_recipe
from typer.testing import CliRunner

import corpusmill.pipelines.runner as runner
from corpusmill.cli import app
from corpusmill.core.recipe import load_recipe
from corpusmill.pipelines.verify import verify_run

# What a writer killed mid-write leaves (`core/atomic.py` names them), and files a user keeps beside a run.
LEFT_BY_A_KILL = [
    "shards/.shard-00000-00000.bin.k1ll3d00.tmp",
    "stages/02-tokenize_v1/.part-00001.parquet.q8w2e4r6.tmp",
    ".stats.json.z9y8x7w6.tmp",
]
USER_FILES = ["notes.tmp", ".notes.tmp", "drafts/.plan.tmp"]


class _Killed(Exception):
    """Stands for the driver dying between the shards and the run's last files."""


def _interrupted_run(recipe: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def die(*args: object, **kwargs: object) -> None:
        raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr(runner, "_write_stats", die)
        with pytest.raises(_Killed):
            runner.run_recipe(load_recipe(recipe), engine="local", output=out)
    assert not (out / "manifest.json").exists() and (out / "shards").is_dir()


def test_a_resumed_run_removes_the_temporaries_of_the_killed_one_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = write_recipe(tmp_path)
    expected = reference_outputs(recipe, tmp_path / "reference")
    out = tmp_path / "run"
    _interrupted_run(recipe, out, monkeypatch)
    for name in LEFT_BY_A_KILL + USER_FILES:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"half")
    runner.run_recipe(load_recipe(recipe), engine="local", output=out)
    assert [name for name in LEFT_BY_A_KILL if (out / name).exists()] == []
    assert all((out / name).read_bytes() == b"half" for name in USER_FILES)
    assert outputs(out) == expected
    assert verify_run(out).problems == []


def test_verify_reports_a_temporary_left_in_a_finished_run(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    out = tmp_path / "run"
    reference_outputs(recipe, out)
    (out / "notes.tmp").write_text("a user's file is no problem")
    assert verify_run(out).problems == []
    left = out / "documents" / ".part-00000.parquet.a1b2c3d4.tmp"
    left.write_bytes(b"half")
    (problem,) = verify_run(out).problems
    assert problem.startswith(
        "documents/.part-00000.parquet.a1b2c3d4.tmp: a temporary file left by an interrupted"
    )
    result = CliRunner().invoke(app, ["verify", str(out)])
    assert result.exit_code == 1
    assert "documents/.part-00000.parquet.a1b2c3d4.tmp" in result.stderr


def test_a_rerun_of_a_finished_run_removes_its_temporaries_and_rebuilds_the_report(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    out = tmp_path / "run"
    expected = reference_outputs(recipe, out)
    # A report write killed after the manifest: no index.html, its temporary beside it.
    (out / "report" / "index.html").unlink()
    left = [
        "report/.index.html.k1ll3d00.tmp",
        ".stats.json.z9y8x7w6.tmp",
        "shards/.manifest.json.a1b2c3d4.tmp",
    ]
    for name in left + USER_FILES:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"half")
    assert len(verify_run(out).problems) == len(left)
    result = runner.run_recipe(load_recipe(recipe), engine="local", output=out)
    assert result.already_complete
    assert [name for name in left if (out / name).exists()] == []
    assert all((out / name).read_bytes() == b"half" for name in USER_FILES)
    assert (out / "report" / "index.html").is_file()
    assert outputs(out) == expected
    assert verify_run(out).problems == []


def test_a_rerun_of_a_finished_run_leaves_the_temporaries_of_other_commands(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    out = tmp_path / "run"
    reference_outputs(recipe, out)
    # `annotate` writes into a finished run and may be writing now: its temporary is not the run's to delete.
    writing = out / "annotations" / ".annotations-00001.parquet.w0rk1ng0.tmp"
    writing.parent.mkdir()
    writing.write_bytes(b"in flight")
    assert runner.run_recipe(load_recipe(recipe), engine="local", output=out).already_complete
    assert writing.read_bytes() == b"in flight"
