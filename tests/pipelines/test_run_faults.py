"""A run that meets an OS error (full disk, read-only file system, no permission, a file too large) ends with one
line naming the file and the errno, exits non-zero, and the same command resumes it to the uninterrupted bytes.

The tests run as root, so permissions cannot be taken away for real: the real faults are a file-size limit
(`RLIMIT_FSIZE`, so writes fail with EFBIG) in a subprocess and a directory where a part must go; the other
errnos are injected in process where a write would raise them.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faultkit import messages, outputs, reference_outputs, run_command, write_recipe
from typer.testing import CliRunner

import corpusmill.pipelines.part_writer as part_writer
from corpusmill.cli import app

# Above every file a run of the fault recipe writes before its tokenize step, below that step's parts.
SIZE_LIMIT = 16_000


@pytest.fixture(scope="module")
def fault_recipe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """The recipe and what its uninterrupted run writes."""
    root = tmp_path_factory.mktemp("faults")
    recipe = write_recipe(root)
    return recipe, reference_outputs(recipe, root / "reference")


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (SIZE_LIMIT, SIZE_LIMIT))


def _assert_one_error_line(stderr: str, *fragments: str) -> str:
    (line,) = messages(stderr)
    assert line.startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.mark.parametrize("engine", [pytest.param("local"), pytest.param("beam", marks=pytest.mark.beam)])
def test_a_file_too_large_is_one_line_and_the_same_command_resumes(
    engine: str, fault_recipe: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    recipe, expected = fault_recipe
    command = run_command(recipe, engine, tmp_path / "run")
    failed = subprocess.run(command, preexec_fn=_limit_file_size, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert failed.stdout == ""
    line = _assert_one_error_line(
        failed.stderr, f"cannot write {tmp_path / 'run' / 'stages'}", "[Errno 27] File too large (EFBIG); "
    )
    assert line.endswith("run the same command again to resume")
    assert "Traceback" not in failed.stderr  # nor the one Beam's SDK harness prints in its worker process
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert outputs(tmp_path / "run") == expected


@pytest.mark.ray
def test_an_error_in_a_ray_worker_is_one_line_and_the_same_command_resumes(
    fault_recipe: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    recipe, expected = fault_recipe
    in_the_way = tmp_path / "run" / "stages" / "02-tokenize_v1" / "part-00001.parquet"
    in_the_way.mkdir(parents=True)  # the worker's rename onto it fails with EISDIR
    command = run_command(recipe, "ray", tmp_path / "run")
    failed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1, failed.stderr[-3000:]
    _assert_one_error_line(
        failed.stderr,
        f"cannot write {in_the_way}: [Errno 21] Is a directory (EISDIR); a directory is in the way",
    )
    assert "\x1b[" not in failed.stderr and "Traceback" not in failed.stderr
    in_the_way.rmdir()
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert outputs(tmp_path / "run") == expected


@pytest.mark.beam
def test_a_strict_beam_run_stops_at_an_unreadable_input_with_one_line(tmp_path: Path) -> None:
    corpus = tmp_path / "in"
    corpus.mkdir()
    for name in ("a.jsonl", "c.jsonl"):
        rows = [{"id": i, "text": f"Document {i} of {name}, with a few words."} for i in range(5)]
        (corpus / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    pq.write_table(pa.table({"body": ["no text column here"]}), corpus / "notext.parquet")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        json.dumps(  # JSON is YAML
            {
                "name": "strict",
                "input": {"paths": [str(corpus)], "part_bytes": 1},  # one part per file
                "stages": [{"stage": "dedup_exact"}, {"stage": "tokenize"}],
            }
        )
    )
    scratch = tmp_path / "tmp"  # where the engine keeps its worker processes' logs
    scratch.mkdir()
    failed = subprocess.run(
        [*run_command(recipe, "beam", tmp_path / "run"), "--strict"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert failed.returncode == 1, failed.stderr[-3000:]
    _assert_one_error_line(
        failed.stderr, f"input file {corpus / 'notext.parquet'} could not be read", "without --strict"
    )
    assert "Traceback" not in failed.stderr and "[while running" not in failed.stderr
    (logs,) = scratch.glob("corpusmill-beam-logs-*")  # the worker's traceback is kept there
    assert any("InputFileError" in path.read_text() for path in logs.iterdir())


def _inject_full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parquet parts meet a full disk when written (Arrow's write raises ENOSPC, naming no file)."""

    class FullDisk(part_writer.pq.ParquetWriter):
        def write_batch(self, *args: object, **kwargs: object) -> None:
            raise OSError(
                errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device"
            )

    monkeypatch.setattr(part_writer.pq, "ParquetWriter", FullDisk)


def _inject_at_create(code: int) -> object:
    def inject(monkeypatch: pytest.MonkeyPatch) -> None:
        """Creating a part's temporary fails (as on a read-only file system, or a directory without access)."""

        def refuse(target: Path) -> Path:
            temporary = target.parent / f".{target.name}.x7k2m9q4.tmp"
            raise OSError(code, os.strerror(code), str(temporary))

        monkeypatch.setattr(part_writer, "temporary_file", refuse)

    return inject


@pytest.mark.parametrize(
    ("inject", "expected"),
    [
        (
            _inject_full_disk,
            "[Errno 28] No space left on device (ENOSPC); free space and run the same command",
        ),
        (
            _inject_at_create(errno.EROFS),
            "[Errno 30] Read-only file system (EROFS); the file system is read-only",
        ),
        (_inject_at_create(errno.EACCES), "[Errno 13] Permission denied (EACCES); give this user access"),
    ],
    ids=["ENOSPC", "EROFS", "EACCES"],
)
def test_os_errors_are_one_line_naming_the_part_and_the_run_resumes(
    inject: object,
    expected: str,
    fault_recipe: tuple[Path, dict[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipe, reference = fault_recipe
    out = tmp_path / "run"
    args = ["run", str(recipe), "--engine", "local", "--output", str(out)]
    with monkeypatch.context() as patch:
        inject(patch)  # type: ignore[operator]
        failed = CliRunner().invoke(app, args)
    assert failed.exit_code == 1, failed.output
    assert not isinstance(failed.exception, OSError)  # handled, not raised
    assert failed.stdout == ""
    line = _assert_one_error_line(failed.stderr, expected)
    assert f"{out / 'stages' / '01-dedup_exact_v1'}/" in line and ".parquet: [Errno" in line
    assert ".tmp" not in line
    resumed = CliRunner().invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert outputs(out) == reference


def test_debug_shows_the_traceback_instead(
    fault_recipe: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    recipe, _ = fault_recipe
    with pytest.MonkeyPatch.context() as patch:
        _inject_full_disk(patch)
        result = CliRunner().invoke(
            app, ["--debug", "run", str(recipe), "--engine", "local", "--output", str(tmp_path / "run")]
        )
    assert result.exit_code == 1
    assert isinstance(result.exception, OSError) and result.exception.errno == errno.ENOSPC
    assert "error:" not in result.stderr


def test_other_commands_end_an_os_error_with_one_line_too(
    fault_recipe: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    recipe, _ = fault_recipe
    out = tmp_path / "run"
    assert (
        CliRunner().invoke(app, ["run", str(recipe), "--engine", "local", "--output", str(out)]).exit_code
        == 0
    )
    shutil.rmtree(out / "report")
    (out / "report").write_text("a file where the report directory goes")
    result = CliRunner().invoke(app, ["report", str(out)])
    assert result.exit_code == 1
    _assert_one_error_line(result.stderr, f"{out / 'report'}: [Errno 17] File exists (EEXIST)")
