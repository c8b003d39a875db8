"""Deduplication as bucketed phases: many buckets give exactly the decisions of one in-memory union-find.

Both schedules are held to this: every phase an engine phase, and (for a step with few keys) the phases after
`keys` run inside one task.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill.core import schema
from corpusmill.core.grouping import ID, KEY, KEY_SCHEMA, duplicate_decisions, star_edges, unique_edges
from corpusmill.core.recipe import parse_recipe
from corpusmill.core.stage import GroupStage, StageParams, register
from corpusmill.pipelines import group_step
from corpusmill.pipelines.buckets import read_bucket, write_buckets
from corpusmill.pipelines.runner import run_recipe

SCHEDULES = {"one task": 10**9, "phases": 0}  # SERIAL_MAX_KEYS for each


@pytest.fixture(params=list(SCHEDULES))
def schedule(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(group_step, "SERIAL_MAX_KEYS", SCHEDULES[request.param])
    return request.param


@register
class ListedKeys(GroupStage):
    """A group stage for tests: a document's keys are the words of its text, so any graph can be built."""

    name = "test_listed_keys"
    Params = StageParams
    requires = (schema.ID, schema.TEXT)
    drop_reason: ClassVar[str] = "listed_duplicate"

    def keys(self, batch: pa.RecordBatch) -> pa.Table:
        """One key per word of the text."""
        keys, ids = [], []
        for doc_id, text in zip(
            batch.column(schema.ID).to_pylist(), batch.column(schema.TEXT).to_pylist(), strict=True
        ):
            for word in (text or "").split():
                keys.append(word.encode())
                ids.append(doc_id)
        return pa.table({KEY: keys, ID: ids}, schema=KEY_SCHEMA)


def _write_inputs(root: Path, documents: list[tuple[str, str]], files: int) -> Path:
    input_dir = root / "input"
    input_dir.mkdir()
    for index in range(files):
        rows = documents[index::files]
        with open(input_dir / f"part{index}.jsonl", "w", encoding="utf-8") as handle:
            for doc_id, text in rows:
                handle.write(json.dumps({"id": doc_id, "text": text}) + "\n")
    return input_dir


def _run_ids(documents: list[tuple[str, str]], files: int) -> dict[str, str]:
    """Each document's id in the run (`<file>:<line>`), by the id it had in the input."""
    return {
        doc_id: f"part{index}.jsonl:{line}"
        for index in range(files)
        for line, (doc_id, _) in enumerate(documents[index::files], start=1)
    }


def _run(tmp_path: Path, input_dir: Path, stage: dict) -> Path:
    recipe = parse_recipe(
        {
            "name": "group-step",
            "input": {"paths": [str(input_dir / "*.jsonl")], "format": "jsonl", "part_bytes": 1},
            "stages": [stage],
            "output": {"keep_rejected": True},
        }
    )
    return run_recipe(recipe, engine="local", output=tmp_path / "run").run_dir


def _removed(run_dir: Path) -> dict[str, str]:
    removed = {}
    for path in (run_dir / "rejected").rglob("*.parquet"):
        table = pq.read_table(path)
        for doc_id, detail in zip(
            table.column(ID).to_pylist(), table.column("drop_detail").to_pylist(), strict=True
        ):
            removed[doc_id] = detail.removeprefix("duplicate of ")
    return removed


def _chained_documents() -> list[tuple[str, str]]:
    rnd = random.Random(7)
    documents = []
    for _ in range(240):
        # Each document lists two keys out of a pool: documents chain through shared keys into components
        # whose members sit in different parts and different buckets.
        keys = {f"k{rnd.randrange(150)}", f"k{rnd.randrange(150)}"}
        documents.append((f"doc-{rnd.randrange(10**8):08d}", " ".join(sorted(keys))))
    return documents


def _near_duplicates() -> list[tuple[str, str]]:
    rnd = random.Random(11)
    words = [f"w{i}" for i in range(400)]
    documents = []
    for index in range(40):
        base = [rnd.choice(words) for _ in range(120)]
        documents.append((f"orig-{index:03d}", " ".join(base)))
        near = base[:]
        near[rnd.randrange(len(near))] = "changed"  # one word of 120: Jaccard far above 0.8
        documents.append((f"near-{index:03d}", " ".join(near)))
    return documents


def _phases(run_dir: Path) -> list[str]:
    timings = json.loads((run_dir / "timings.json").read_text())
    return [phase["phase"] for run in timings["passes"] for step in run["steps"] for phase in step["phases"]]


def test_chains_across_many_parts_resolve_like_one_union_find(tmp_path: Path, schedule: str) -> None:
    documents = _chained_documents()
    input_dir = _write_inputs(tmp_path, documents, files=6)
    run_dir = _run(tmp_path, input_dir, {"stage": "test_listed_keys"})

    run_id = _run_ids(documents, files=6)
    keys = ListedKeys().keys(pa.RecordBatch.from_pylist([{"id": run_id[i], "text": t} for i, t in documents]))
    expected = dict(
        zip(*duplicate_decisions(unique_edges(star_edges(keys))).to_pydict().values(), strict=True)
    )
    assert expected and _removed(run_dir) == expected
    summary = json.loads(next((run_dir / "stages").glob("*/duplicates.json")).read_text())
    assert summary["buckets"] == 6
    assert summary["star_steps"] >= 4  # chains take more than one large/small round


def test_near_duplicates_are_verified_across_buckets(tmp_path: Path, schedule: str) -> None:
    documents = _near_duplicates()
    input_dir = _write_inputs(tmp_path, documents, files=5)
    run_dir = _run(tmp_path, input_dir, {"stage": "dedup_minhash", "threshold": 0.8})
    removed = _removed(run_dir)
    run_id = _run_ids(documents, files=5)
    pairs = [sorted((run_id[f"orig-{i:03d}"], run_id[f"near-{i:03d}"])) for i in range(40)]
    assert removed == {high: low for low, high in pairs}  # the smaller id survives
    summary = json.loads(next((run_dir / "stages").glob("*/duplicates.json")).read_text())
    assert summary["confirmed_edges"] == 40
    phases = [phase.split(" ", 1)[-1] for phase in _phases(run_dir)]
    if schedule == "one task":
        assert phases == ["keys", "resolve", "apply"]
    else:
        assert phases[:4] == ["keys", "candidates", "attach", "confirm"] and "resolve" not in phases
        assert phases[4:] == [f"components {n}" for n in range(1, summary["star_steps"] + 1)] + ["apply"]


@pytest.mark.parametrize("stage", ["test_listed_keys", "dedup_minhash"])
def test_both_schedules_write_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """The same tasks over the same buckets: every data file, the summary, the output and the stats agree."""
    documents = _chained_documents() if stage == "test_listed_keys" else _near_duplicates()
    input_dir = _write_inputs(tmp_path, documents, files=5)
    runs = {}
    for name, bound in SCHEDULES.items():
        monkeypatch.setattr(group_step, "SERIAL_MAX_KEYS", bound)
        runs[name] = _run(tmp_path / name, input_dir, {"stage": stage})
    files = {name: _data_files(run_dir) for name, run_dir in runs.items()}
    assert files["one task"] == files["phases"]
    assert any("components-" in name for name in files["phases"])
    stats = {name: json.loads((run_dir / "stats.json").read_text()) for name, run_dir in runs.items()}
    assert _counters(stats["one task"]) == _counters(stats["phases"])
    assert len(_phases(runs["phases"])) > len(_phases(runs["one task"])) == 3


def _data_files(run_dir: Path) -> dict[str, bytes]:
    """Every file of the run that holds data (not markers, timings or stats, which hold times, nor the run's
    records and report, which name its directory)."""
    skip = ("timings.json", "stats.json", "manifest.json", "run.json")
    return {
        str(path.relative_to(run_dir)): path.read_bytes()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
        and not path.name.endswith(".done.json")
        and path.name not in skip
        and path.relative_to(run_dir).parts[0] != "report"
    }


def _counters(stats: dict) -> dict:
    return {stage["label"]: stage["counters"] for stage in stats["stages"]}


def test_no_shared_keys_means_no_component_steps(tmp_path: Path) -> None:
    documents = [(f"d{i}", f"unique{i}") for i in range(10)]
    run_dir = _run(tmp_path, _write_inputs(tmp_path, documents, files=2), {"stage": "test_listed_keys"})
    summary = json.loads(next((run_dir / "stages").glob("*/duplicates.json")).read_text())
    assert summary == {
        "buckets": 2,
        "candidate_edges": 0,
        "confirmed_edges": 0,
        "star_steps": 0,
        "decisions": None,
    }
    assert _removed(run_dir) == {}


def test_bucket_files_hold_each_row_in_its_bucket_only(tmp_path: Path) -> None:
    table = pa.table({"v": list(range(10))})
    write_buckets(tmp_path / "f.arrow", table, pa.array([3, 0, 3, 1, 0, 3, 3, 1, 0, 0]).to_numpy(), 5)
    buckets = [read_bucket([tmp_path / "f.arrow"], b).column("v").to_pylist() for b in range(5)]
    assert buckets == [[1, 4, 8, 9], [3, 7], [], [0, 2, 5, 6], []]
    with pytest.raises(ValueError, match="holds 5 buckets"):
        read_bucket([tmp_path / "f.arrow"], 5)


def test_an_empty_input_file_among_the_parts_is_no_error(tmp_path: Path) -> None:
    text = " ".join(f"word{i}" for i in range(30))
    documents = [(f"d{i}", text) for i in range(4)]
    input_dir = _write_inputs(tmp_path, documents, files=2)
    (input_dir / "part9.jsonl").write_text(
        "", encoding="utf-8"
    )  # a part that yields no batch, so no side file
    run_dir = _run(tmp_path, input_dir, {"stage": "dedup_minhash", "threshold": 0.8})
    # d0 and d2 are lines 1 and 2 of part0.jsonl, d1 and d3 of part1.jsonl.
    assert _removed(run_dir) == {f"part{f}.jsonl:{n}": "part0.jsonl:1" for f, n in ((0, 2), (1, 1), (1, 2))}
