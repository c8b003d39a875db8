"""Bad input on the local engine: unreadable files are skipped and listed, good documents all kept, resumes exact."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill.core.recipe import parse_recipe
from corpusmill.pipelines.part_source import InputFileError
from corpusmill.pipelines.runner import RunDirError, run_recipe

GOOD = {"a.jsonl": 9, "c.jsonl": 7}  # documents per good file


def _text(n: int) -> str:
    rng = random.Random(n)
    return f"Document {n} is about " + " ".join(f"w{rng.randrange(9000)}" for _ in range(30)) + "."


def _corpus(root: Path, bad: tuple[str, ...] = ("notext.parquet", "broken.jsonl.gz")) -> Path:
    """Good JSONL files, an empty file, and the chosen bad files: a Parquet file without text, garbage gzip."""
    root.mkdir(parents=True)
    n = 0
    for name, count in GOOD.items():
        rows = [{"id": f"{name}-{i}", "text": _text(n := n + 1)} for i in range(count)]
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "empty.jsonl").write_bytes(b"")
    if "notext.parquet" in bad:
        pq.write_table(pa.table({"body": ["no text column here", "nor here"]}), root / "notext.parquet")
    if "broken.jsonl.gz" in bad:
        (root / "broken.jsonl.gz").write_bytes(random.Random(1).randbytes(300))
    return root


def _recipe(root: Path, stages: list[dict] | None = None) -> object:
    return parse_recipe(
        {
            "name": "bad-input",
            "input": {"paths": [str(root)], "part_bytes": 1},  # one part per file
            "stages": stages or [{"stage": "dedup_exact"}, {"stage": "tokenize"}],
            "output": {"batch_size": 4},
        }
    )


def _skipped(run_dir: Path) -> list[dict]:
    return pq.read_table(run_dir / "skipped").to_pylist() if (run_dir / "skipped").is_dir() else []


def _file_rows(run_dir: Path) -> dict[str, dict]:
    return {row["file"]: row for row in _skipped(run_dir) if row["unit"] == "file"}


def test_unreadable_files_are_skipped_and_listed_and_every_good_document_is_kept(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_recipe(_recipe(_corpus(tmp_path / "in")), engine="local", output=run_dir)
    ids = pq.read_table(run_dir / "documents", columns=["id"]).column("id").to_pylist()
    assert sorted(ids) == sorted(f"{name}:{line}" for name, n in GOOD.items() for line in range(1, n + 1))
    parquet = _file_rows(run_dir)["notext.parquet"]
    assert parquet["reason"] == "corrupt_file" and parquet["position"] is None
    assert parquet["detail"].startswith("ValueError: ") and "'text'" in parquet["detail"]
    assert "empty.jsonl" not in {row["file"] for row in _skipped(run_dir)}
    read = json.loads((run_dir / "stats.json").read_text())["stages"][0]
    assert read["label"] == "00-read" and read["counters"]["reader.corrupt_file"] == 2  # the gzip file too
    assert result.summary.read is not None and result.summary.read.failed_files == 2
    listed = {f["path"] for f in json.loads((run_dir / "manifest.json").read_text())["files"]}
    assert {p.relative_to(run_dir).as_posix() for p in (run_dir / "skipped").glob("*.parquet")} <= listed
    assert any(path.startswith("skipped/") for path in listed)


def test_a_file_the_reader_gives_up_on_is_listed_too(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_recipe(_recipe(_corpus(tmp_path / "in")), engine="local", output=run_dir)
    assert _file_rows(run_dir)["broken.jsonl.gz"]["reason"] == "corrupt_file"


@pytest.mark.parametrize("bad", ["notext.parquet", "broken.jsonl.gz"])
def test_strict_runs_stop_at_an_unreadable_file_naming_it(tmp_path: Path, bad: str) -> None:
    recipe = _recipe(_corpus(tmp_path / "in", bad=(bad,)))
    with pytest.raises(InputFileError, match=bad.replace(".", r"\.")):
        run_recipe(recipe, engine="local", output=tmp_path / "run", strict=True)


def test_removing_a_bad_file_is_refused_until_the_run_restarts(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "in", bad=("notext.parquet",))
    run_dir = tmp_path / "run"
    run_recipe(_recipe(root), engine="local", output=run_dir)
    assert set(_file_rows(run_dir)) == {"notext.parquet"}
    (root / "notext.parquet").unlink()
    with pytest.raises(RunDirError, match=r"notext\.parquet: removed"):
        run_recipe(_recipe(root), engine="local", output=run_dir)
    result = run_recipe(_recipe(root), engine="local", output=run_dir, restart=True)
    assert not (run_dir / "skipped").exists()
    assert result.summary.read is not None and result.summary.read.failed_files == 0
    assert result.summary.documents_out == sum(GOOD.values())


def _snapshot(run_dir: Path, folder: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / folder).glob("*.parquet"))}


@pytest.mark.parametrize("lose_skipped", [False, True], ids=["skipped-kept", "skipped-lost"])
def test_a_resumed_run_writes_byte_identical_skipped_files(tmp_path: Path, lose_skipped: bool) -> None:
    """The one step reads the input and is the last step: deleting its markers redoes every part."""
    root = _corpus(tmp_path / "in")
    recipe = _recipe(root, [{"stage": "tokenize"}])
    run_dir = tmp_path / "run"
    run_recipe(recipe, engine="local", output=run_dir)
    skipped, documents = _snapshot(run_dir, "skipped"), _snapshot(run_dir, "documents")
    assert skipped
    for marker in (run_dir / "stages").rglob("*.done.json"):
        marker.unlink()
    (run_dir / "manifest.json").unlink()
    shutil.rmtree(run_dir / "report")
    if lose_skipped:  # killed after the parts' outputs but before their skipped files: all redone alike
        shutil.rmtree(run_dir / "skipped")
    result = run_recipe(recipe, engine="local", output=run_dir)
    assert not result.already_complete
    assert _snapshot(run_dir, "skipped") == skipped
    assert _snapshot(run_dir, "documents") == documents
    assert result.summary.read is not None and result.summary.read.failed_files == 2
