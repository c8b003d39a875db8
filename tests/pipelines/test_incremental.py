"""Incremental rebuilds: a run built on a base run equals a full run over the same inputs, file for file.

The corpus is built so that every rule of the incremental path is exercised: a new dump whose file names sort
before the base's (its documents have smaller ids, so they displace base documents as the survivors of their
duplicate groups, and base parts must be written again from the dedup step on) and one sorting after it,
exact and near-duplicate copies of base documents in both, and a mix whose plan changes with the union's
accounting. Takedowns remove one document by id (whose near-duplicate then comes back) and one URL.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpusmill.core.recipe import Recipe, parse_recipe
from corpusmill.pipelines.increment import BaseRunError
from corpusmill.pipelines.runner import RunDirError, RunResult, run_recipe

ENGINES = [pytest.param("ray", marks=pytest.mark.ray), pytest.param("beam", marks=pytest.mark.beam)]
TOPICS = ["rivers", "bread", "bridges", "maps", "gardens", "trains", "lamps", "ships"]


def _text(n: int) -> str:
    rng = random.Random(n)
    topic = TOPICS[n % len(TOPICS)]
    words = " ".join(f"{topic}{rng.randrange(3000)}" for _ in range(60))
    return f"Notes on {topic} number {n}: {words}."


def _edited(text: str) -> str:
    """A near-duplicate: the same text with its last few words changed."""
    words = text.split()
    return " ".join([*words[:-3], "changed", "ending", "here."])


def _row(n: int, text: str | None = None, lang: str | None = None) -> dict:
    return {
        "id": n,
        "text": text if text is not None else _text(n),
        "url": f"https://example.org/{n}",
        "lang": lang or ("en" if n % 3 else "de"),
    }


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _base_dump(directory: Path) -> None:
    for file in range(3):
        rows = [_row(file * 40 + i) for i in range(40)]
        # A near-duplicate of the file's first document, inside the base: the base drops it.
        rows.append(_row(900 + file, _edited(_text(file * 40)), "en"))
        _write(directory / f"m-{file:03d}.jsonl", rows)


def _new_dump(directory: Path) -> None:
    # Sorts before the base: its copies of base documents have smaller ids and survive instead of them.
    _write(
        directory / "a-new.jsonl",
        [_row(5, lang="de"), _row(500, _edited(_text(41))), *[_row(600 + i) for i in range(10)]],
    )
    # Sorts after the base: its copies lose to the base documents.
    _write(
        directory / "z-new.jsonl",
        [_row(700, _text(7)), _row(701, _edited(_text(82))), *[_row(710 + i) for i in range(10)]],
    )


def _recipe(directory: Path, first_stage: dict | None = None) -> Recipe:
    stages = [
        {"stage": "dedup_exact"},
        {"stage": "dedup_minhash", "threshold": 0.7},
        {"stage": "mix", "domain_column": "lang", "multipliers": {"en": 0.7}, "default_multiplier": 1.6},
        {"stage": "write_shards", "max_tokens_per_shard": 3000, "heldout_fraction": 0.1},
    ]
    return parse_recipe(
        {
            "name": "incremental",
            "seed": 3,
            "input": {"paths": [str(directory / "*.jsonl")], "part_bytes": 1, "lang_field": "lang"},
            "stages": [first_stage or {"stage": "tokenize"}, *stages],
            "output": {"batch_size": 16, "keep_rejected": True},
        }
    )


def _files(run: RunResult) -> list[dict]:
    """Every output file with its size and sha256, as the manifest lists them."""
    return json.loads((run.run_dir / "manifest.json").read_text())["files"]


def _plan(run: RunResult) -> dict:
    return json.loads((run.run_dir / "stats.json").read_text())["plans"]


def _increment(run: RunResult) -> dict:
    return json.loads((run.run_dir / "stats.json").read_text())["incremental"]


def _assert_same(run: RunResult, full: RunResult) -> None:
    assert _files(run) == _files(full)
    assert _plan(run) == _plan(full)
    assert run.summary == full.summary


def _rejected(run: RunResult) -> dict[str, str]:
    rows = pq.read_table(run.run_dir / "rejected", columns=["id", "drop_reason"]).to_pylist()
    return {row["id"]: row["drop_reason"] for row in rows}


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A base run over the first dump, then the grown input, with its full rebuild as the reference."""
    root = tmp_path_factory.mktemp("incremental")
    inputs = root / "in"
    _base_dump(inputs)
    recipe = _recipe(inputs)
    base = run_recipe(recipe, engine="local", output=root / "base")
    _new_dump(inputs)
    full = run_recipe(recipe, engine="local", output=root / "full")
    return {"root": root, "inputs": inputs, "recipe": recipe, "base": base, "full": full}


def test_incremental_run_equals_a_full_rebuild(grown: dict, tmp_path: Path) -> None:
    run = run_recipe(grown["recipe"], engine="local", output=tmp_path / "inc", base=grown["base"].run_dir)
    _assert_same(run, grown["full"])
    increment = _increment(run)
    assert increment["added_files"] == ["a-new.jsonl", "z-new.jsonl"]
    assert increment["removed_files"] == [] and increment["taken_down"] == 0
    assert (increment["parts"], increment["reused_parts"]) == (5, 3)
    # The new dump's copies displace base documents as survivors, and lose to others.
    rejected = _rejected(run)
    assert rejected["m-000.jsonl:6"] == "exact_duplicate"  # the copy in a-new.jsonl (line 1) has a smaller id
    assert rejected["m-001.jsonl:2"] == "near_duplicate"  # a-new.jsonl:2 is its near-duplicate
    assert rejected["z-new.jsonl:1"] == "exact_duplicate"
    assert rejected["z-new.jsonl:2"] == "near_duplicate"
    assert "m-000.jsonl:6" not in _rejected(grown["base"])


def test_unchanged_parts_are_taken_over_not_computed(grown: dict, tmp_path: Path) -> None:
    run = run_recipe(grown["recipe"], engine="local", output=tmp_path / "inc", base=grown["base"].run_dir)
    base_dir, run_dir = grown["base"].run_dir, run.run_dir
    # part-00000 is a-new.jsonl now; the base's part-00000 (m-000.jsonl) is this run's part-00001.
    parts = json.loads((run_dir / "parts.json").read_text())
    assert [p["names"] for p in parts] == [
        ["a-new.jsonl"],
        ["m-000.jsonl"],
        ["m-001.jsonl"],
        ["m-002.jsonl"],
        ["z-new.jsonl"],
    ]
    step = "01-tokenize_v1"
    for new_name, base_name in [("part-00001", "part-00000"), ("part-00003", "part-00002")]:
        taken = run_dir / "stages" / step / f"{new_name}.parquet"
        assert os.path.samefile(taken, base_dir / "stages" / step / f"{base_name}.parquet")
        assert json.loads((run_dir / "stages" / step / f"{new_name}.done.json").read_text())["borrowed"]
        for phase in ("keys", "side", "members"):
            assert (run_dir / "index" / "03-dedup_minhash_v2" / phase / f"{new_name}.parquet").exists()
    assert not (run_dir / "stages" / step / "part-00000.done.json").read_text().count("borrowed")
    # The parts taken over count as reused, not as work of the node that linked them.
    nodes = json.loads((run_dir / "stats.json").read_text())["nodes"]
    assert nodes["reused"]["phases"][step] == 3 and nodes[socket.gethostname()]["phases"][step] == 2
    # m-002.jsonl has no duplicate in the new dump: its exact-dedup output is the base's too.
    taken = run_dir / "stages" / "02-dedup_exact_v1" / "part-00003.parquet"
    assert os.path.samefile(taken, base_dir / "stages" / "02-dedup_exact_v1" / "part-00002.parquet")
    # m-000.jsonl lost line 6 to a-new.jsonl: written again from the exact dedup on.
    again = run_dir / "stages" / "02-dedup_exact_v1" / "part-00001.parquet"
    assert not os.path.samefile(again, base_dir / "stages" / "02-dedup_exact_v1" / "part-00000.parquet")


def test_takedown_brings_a_former_duplicate_back(grown: dict, tmp_path: Path) -> None:
    # m-001.jsonl:1 survived its near-duplicate m-001.jsonl:41; it is taken down by id, and m-001.jsonl:3 by
    # its URL.
    assert _rejected(grown["full"])["m-001.jsonl:41"] == "near_duplicate"
    removals = tmp_path / "removed.txt"
    removals.write_text("# legal request 7\nm-001.jsonl:1\n\nhttps://example.org/42\n")
    inc = run_recipe(grown["recipe"], engine="local", output=tmp_path / "inc", base=grown["base"].run_dir)
    again = run_recipe(
        grown["recipe"], engine="local", output=tmp_path / "inc2", base=inc.run_dir, removals=removals
    )
    full = run_recipe(grown["recipe"], engine="local", output=tmp_path / "full", removals=removals)
    _assert_same(again, full)
    rejected = _rejected(again)
    assert rejected["m-001.jsonl:1"] == rejected["m-001.jsonl:3"] == "taken_down"
    assert "m-001.jsonl:41" not in rejected  # its original is gone, so it is kept
    kept = set(pq.read_table(again.run_dir / "documents", columns=["id"]).column("id").to_pylist())
    assert "m-001.jsonl:41" in kept
    increment = _increment(again)
    assert increment["taken_down"] == 2 and increment["reused_parts"] == 4  # only m-001.jsonl is read again
    # A run built on this one keeps the takedowns without being told again.
    later = run_recipe(grown["recipe"], engine="local", output=tmp_path / "inc3", base=again.run_dir)
    assert _files(later) == _files(full)


def test_takedown_before_a_first_step_that_cannot_drop(grown: dict, tmp_path: Path) -> None:
    data = grown["recipe"].model_dump(mode="json")
    data["stages"] = [{"stage": s["stage"], **s["params"]} for s in data["stages"]][1:]
    data["stages"].insert(2, {"stage": "tokenize"})
    recipe = parse_recipe(data)  # dedup first: the takedown gets a step of its own
    removals = tmp_path / "removed.txt"
    removals.write_text("m-001.jsonl:1\n")
    full = run_recipe(recipe, engine="local", output=tmp_path / "full", removals=removals)
    assert (full.run_dir / "stages" / "00-takedown").is_dir()
    assert _rejected(full)["m-001.jsonl:1"] == "taken_down"
    assert "m-001.jsonl:41" not in _rejected(full)


@pytest.mark.parametrize("engine", ENGINES)
def test_incremental_run_equals_a_full_rebuild_on_every_engine(
    grown: dict, engine: str, tmp_path: Path
) -> None:
    run = run_recipe(
        grown["recipe"], engine=engine, output=tmp_path / "inc", base=grown["base"].run_dir, num_cpus=2
    )
    _assert_same(run, grown["full"])
    assert _increment(run)["reused_parts"] == 3
    # The same with a takedown that brings a former near-duplicate back, against the in-process full run.
    removals = tmp_path / "removed.txt"
    removals.write_text("m-001.jsonl:1\n")
    taken = run_recipe(
        grown["recipe"],
        engine=engine,
        output=tmp_path / "taken",
        base=grown["base"].run_dir,
        removals=removals,
        num_cpus=2,
    )
    full = run_recipe(grown["recipe"], engine="local", output=tmp_path / "full", removals=removals)
    _assert_same(taken, full)
    assert "m-001.jsonl:41" not in _rejected(taken) and _rejected(taken)["m-001.jsonl:1"] == "taken_down"


def test_a_base_must_be_a_finished_run_of_the_same_recipe(grown: dict, tmp_path: Path) -> None:
    with pytest.raises(BaseRunError, match="not a finished run"):
        run_recipe(grown["recipe"], engine="local", output=tmp_path / "x", base=tmp_path)
    data = grown["recipe"].model_dump(mode="json")
    data["seed"] = 4
    data["stages"] = [{"stage": s["stage"], **s["params"]} for s in data["stages"]]
    with pytest.raises(BaseRunError, match="another recipe"):
        run_recipe(parse_recipe(data), engine="local", output=tmp_path / "x", base=grown["base"].run_dir)
    with pytest.raises(RunDirError, match="base run itself"):
        run_recipe(grown["recipe"], engine="local", output=grown["base"].run_dir, base=grown["base"].run_dir)


def test_a_resume_under_another_takedown_list_is_refused(grown: dict, tmp_path: Path) -> None:
    shutil.copytree(grown["full"].run_dir, tmp_path / "run")
    removals = tmp_path / "removed.txt"
    removals.write_text("m-000.jsonl:1\n")
    with pytest.raises(RunDirError, match="takedown list"):
        run_recipe(grown["recipe"], engine="local", output=tmp_path / "run", removals=removals)


def test_an_interrupted_incremental_run_resumes_to_the_same_files(grown: dict, tmp_path: Path) -> None:
    run = run_recipe(grown["recipe"], engine="local", output=tmp_path / "inc", base=grown["base"].run_dir)
    run_dir = run.run_dir
    # As if killed during the minhash step: later steps and a borrowed and a computed part of it are gone.
    for name in ("manifest.json", "stats.json"):
        (run_dir / name).unlink()
    for path in ("stages/04-mix_v2", "stages/05-write_shards_v3", "shards", "documents", "report"):
        shutil.rmtree(run_dir / path)
    step = run_dir / "stages" / "03-dedup_minhash_v2"
    for part in ("part-00000", "part-00002"):
        (step / f"{part}.done.json").unlink()
    (run_dir / "index" / "03-dedup_minhash_v2" / "keys" / "part-00003.done.json").unlink()
    resumed = run_recipe(grown["recipe"], engine="local", output=run_dir, base=grown["base"].run_dir)
    assert not resumed.already_complete
    _assert_same(resumed, grown["full"])


def test_a_recipe_that_starts_with_dedup_builds_incrementally_too(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    _base_dump(inputs)
    data = _recipe(inputs).model_dump(mode="json")
    stages = [{"stage": s["stage"], **s["params"]} for s in data["stages"]]
    data["stages"] = [stages[1], stages[2], stages[0], *stages[3:]]  # dedup reads the input itself
    recipe = parse_recipe(data)
    (inputs / "m-002.jsonl").write_text((inputs / "m-002.jsonl").read_text() + "not json\n")  # a skipped line
    base = run_recipe(recipe, engine="local", output=tmp_path / "base")
    _new_dump(inputs)
    inc = run_recipe(recipe, engine="local", output=tmp_path / "inc", base=base.run_dir)
    full = run_recipe(recipe, engine="local", output=tmp_path / "full")
    _assert_same(inc, full)
    assert _increment(inc)["reused_parts"] == 3
    assert [e["path"] for e in _files(inc) if e["path"].startswith("skipped/")] == [
        "skipped/part-00003.parquet"
    ]
