"""One identity per document: colliding input ids, moved corpora and changed inputs on resume."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpusmill.core.hashing import hash64
from corpusmill.core.recipe import parse_recipe
from corpusmill.io.inputs import input_root, list_inputs
from corpusmill.pipelines.runner import RunDirError, run_recipe

SENTENCES = [
    "The library opened a new reading room for children on the second floor of the old town hall.",
    "Farmers in the valley planted their barley two weeks earlier than usual after a very mild winter.",
    "The museum's collection of maps shows how the coastline changed over three hundred years of storms.",
    "A volunteer crew repaired the footbridge over the creek with timber from a nearby sawmill.",
    "Our recipe for rye bread needs a sourdough starter, a slow rise and a very hot oven in the morning.",
]


def _text(n: int) -> str:
    rng = random.Random(n)
    words = " ".join(f"w{rng.randrange(5000)}" for _ in range(40))
    return f"{SENTENCES[n % len(SENTENCES)]} Document {n} talks about {words}."


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _recipe(paths: list[str], stages: list[dict], **input_options) -> object:
    return parse_recipe(
        {
            "name": "identity",
            "input": {"paths": paths, "part_bytes": 1, **input_options},
            "stages": stages,
            "output": {"batch_size": 16},
        }
    )


DEDUP_AND_SHARDS = [
    {"stage": "dedup_exact"},
    {"stage": "dedup_minhash", "threshold": 0.7},
    {"stage": "tokenize"},
    {"stage": "write_shards", "max_tokens_per_shard": 2000},
]


def test_colliding_input_ids_across_files_keep_every_distinct_text(tmp_path: Path) -> None:
    # Two dumps that each number their documents 0..49; B repeats 25 of A's texts and has 25 new ones.
    a = [{"id": i, "text": _text(i)} for i in range(50)]
    b = [{"id": i, "text": _text(i) if i < 25 else _text(100 + i)} for i in range(50)]
    _write_jsonl(tmp_path / "in" / "a.jsonl", a)
    _write_jsonl(tmp_path / "in" / "b.jsonl", b)
    recipe = _recipe([str(tmp_path / "in" / "*.jsonl")], DEDUP_AND_SHARDS)
    result = run_recipe(recipe, engine="local", output=tmp_path / "run")
    kept = pq.read_table(tmp_path / "run" / "documents").to_pydict()
    assert sorted(kept["text"]) == sorted({row["text"] for row in a + b})  # 75 distinct texts, each once
    assert len(kept["id"]) == len(set(kept["id"])) == 75
    rejected = pq.read_table(tmp_path / "run" / "rejected").to_pylist()
    assert {row["drop_reason"] for row in rejected} == {"exact_duplicate"}
    assert sorted(row["id"] for row in rejected) == sorted(f"b.jsonl:{line}" for line in range(1, 26))
    assert result.summary.documents_out == 75


def _html_pages(directory: Path) -> None:
    for n in range(12):
        page = directory / f"site{n % 3}" / f"page-{n}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        body = f"<p>{_text(n)}</p><p>{_text(n + 50)}</p>"
        page.write_text(
            f"<html><head><title>Page {n}</title></head><body><article>{body}</article></body></html>"
        )
    # A copy of page 0 under another name: an exact duplicate whatever the mount.
    shutil.copy(directory / "site0" / "page-0.html", directory / "site2" / "copy-of-0.html")


def test_the_same_html_directory_under_two_paths_gives_identical_ids_and_shards(tmp_path: Path) -> None:
    laptop = tmp_path / "laptop" / "crawl"
    _html_pages(laptop)
    cluster = tmp_path / "mnt" / "volume" / "crawl-copy"
    shutil.copytree(laptop, cluster)
    stages = [{"stage": "extract"}, *DEDUP_AND_SHARDS]
    runs = []
    for root in (laptop, cluster):
        run_dir = tmp_path / f"run-{root.parent.name}"
        run_recipe(_recipe([str(root)], stages), engine="local", output=run_dir)
        runs.append(run_dir)
    tables = [pq.read_table(run / "documents").sort_by("id") for run in runs]
    assert tables[0].column("id").to_pylist() == tables[1].column("id").to_pylist()
    assert "site0/page-0.html" in tables[0].column("id").to_pylist()
    assert tables[0].equals(tables[1])  # source, url and every other column too
    shards = [sorted((run / "shards").glob("*.bin")) + sorted((run / "shards").glob("*.idx")) for run in runs]
    assert [p.name for p in shards[0]] == [p.name for p in shards[1]] and shards[0]
    assert [p.read_bytes() for p in shards[0]] == [p.read_bytes() for p in shards[1]]


def test_input_names_are_relative_to_the_common_root_or_the_given_one(tmp_path: Path) -> None:
    for name in ("2024/a.jsonl", "2025/a.jsonl", "2025/sub/b.jsonl"):
        _write_jsonl(tmp_path / "dumps" / name, [{"text": "x"}])
    patterns = [str(tmp_path / "dumps" / "2024" / "*.jsonl"), str(tmp_path / "dumps" / "2025")]
    assert input_root(patterns) == ("file", str(tmp_path / "dumps"))
    assert [f.name for f in list_inputs(patterns)] == ["2024/a.jsonl", "2025/a.jsonl", "2025/sub/b.jsonl"]
    assert list_inputs(patterns, root=str(tmp_path))[0].name == "dumps/2024/a.jsonl"
    single = [str(tmp_path / "dumps" / "2025" / "sub" / "b.jsonl")]
    assert [f.name for f in list_inputs(single)] == ["b.jsonl"]
    with pytest.raises(ValueError, match="not under the input root"):
        list_inputs(patterns, root=str(tmp_path / "dumps" / "2025"))


# --- resume against changed inputs ---------------------------------------------------------------------


def _resumable_corpus(directory: Path) -> None:
    for index in range(3):
        _write_jsonl(directory / f"f{index}.jsonl", [{"text": _text(10 * index + n)} for n in range(8)])


def _finished_run(tmp_path: Path) -> tuple[Path, object, Path]:
    """A corpus of three files, a recipe over it, and the run directory of its finished run."""
    corpus = tmp_path / "in"
    _resumable_corpus(corpus)
    stages = [{"stage": "dedup_exact"}, {"stage": "tokenize"}, {"stage": "write_shards"}]
    recipe = _recipe([str(corpus / "*.jsonl")], stages)
    run_dir = tmp_path / "run"
    run_recipe(recipe, engine="local", output=run_dir)
    return corpus, recipe, run_dir


def _interrupt(run_dir: Path) -> None:
    """Leave the run as a crash in its last step would: no manifest, the shard step's markers gone."""
    (run_dir / "manifest.json").unlink()
    for path in sorted((run_dir / "stages").glob("03-*/**/*"), reverse=True):
        if path.is_file():
            path.unlink()


def _grow(directory: Path) -> str:
    with (directory / "f1.jsonl").open("a") as handle:
        handle.write(json.dumps({"text": _text(99)}) + "\n")
    return "f1.jsonl: grew"


def _shrink(directory: Path) -> str:
    lines = (directory / "f2.jsonl").read_text().splitlines(keepends=True)
    (directory / "f2.jsonl").write_text("".join(lines[:-1]))
    return "f2.jsonl: shrank"


def _add(directory: Path) -> str:
    _write_jsonl(directory / "f9.jsonl", [{"text": _text(77)}])
    return "f9.jsonl: added"


def _remove(directory: Path) -> str:
    (directory / "f0.jsonl").unlink()
    return "f0.jsonl: removed"


def _replace_same_size(directory: Path) -> str:
    path = directory / "f0.jsonl"
    data = path.read_bytes()
    path.write_bytes(data.replace(b"Document 1 ", b"Document X "))
    return "f0.jsonl: changed"


@pytest.mark.parametrize("change", [_grow, _shrink, _add, _remove, _replace_same_size])
@pytest.mark.parametrize("finished", [True, False])
def test_changed_inputs_are_refused_and_restart_equals_a_fresh_run(tmp_path: Path, change, finished) -> None:
    corpus, recipe, run_dir = _finished_run(tmp_path)
    if not finished:
        _interrupt(run_dir)
    expected = change(corpus)
    with pytest.raises(RunDirError, match=expected) as refused:
        run_recipe(recipe, engine="local", output=run_dir)
    assert "--restart" in str(refused.value) and "--output" in str(refused.value)
    run_recipe(recipe, engine="local", output=run_dir, restart=True)
    fresh = tmp_path / "fresh"
    run_recipe(recipe, engine="local", output=fresh)
    for folder in ("documents", "shards"):
        mine = sorted(p.relative_to(run_dir) for p in (run_dir / folder).rglob("*") if p.is_file())
        theirs = sorted(p.relative_to(fresh) for p in (fresh / folder).rglob("*") if p.is_file())
        assert mine == theirs
        for relative in mine:
            if relative.name != "manifest.json":
                assert (run_dir / relative).read_bytes() == (fresh / relative).read_bytes(), relative
    assert run_recipe(recipe, engine="local", output=run_dir).already_complete


def test_a_marker_is_never_reused_for_other_files(tmp_path: Path) -> None:
    _, recipe, run_dir = _finished_run(tmp_path)
    # Pretend part-00000's marker of the tokenize step was written for other files.
    marker = next((run_dir / "stages").glob("02-*/part-00000.done.json"))
    data = json.loads(marker.read_text())
    assert data["identity"]
    data["identity"] = "written-for-other-files"
    marker.write_text(json.dumps(data))
    (run_dir / "manifest.json").unlink()
    run_recipe(recipe, engine="local", output=run_dir)
    assert json.loads(marker.read_text())["identity"] != "written-for-other-files"


def test_composite_hash_keys_are_unambiguous() -> None:
    assert hash64(0, "doc:1") != hash64(0, "doc", 1)
    assert hash64(0, "1") != hash64(0, 1)
    assert hash64(0, "a", "bc") != hash64(0, "ab", "c")
    assert hash64(1, "x") != hash64(0, "1:x")
    assert hash64(0, "doc", 1) == hash64(0, "doc", 1)


# --- held-out data ----------------------------------------------------------------------------------------


def test_a_mixed_run_with_repeats_holds_out_whole_documents_with_all_their_copies(tmp_path: Path) -> None:
    from corpusmill.shards.formats import open_shard
    from corpusmill.shards.manifest import ShardManifest

    rows = [{"text": _text(n), "lang": "en" if n % 3 else "de"} for n in range(90)]
    _write_jsonl(tmp_path / "in" / "docs.jsonl", rows)
    stages = [
        {"stage": "tokenize"},
        {"stage": "mix", "domain_column": "lang", "multipliers": {"en": 1.0, "de": 2.6}},
        {"stage": "write_shards", "heldout_fraction": 0.25, "max_tokens_per_shard": 1500},
    ]
    recipe = _recipe([str(tmp_path / "in" / "docs.jsonl")], stages, lang_field="lang")
    run_dir = tmp_path / "run"
    run_recipe(recipe, engine="local", output=run_dir)
    documents = pq.read_table(run_dir / "documents", columns=["id", "mix_copy", "tokens"]).to_pylist()
    assert any(row["mix_copy"] >= 2 for row in documents)  # documents repeated three times
    original_of = {tuple(row["tokens"]): row["id"].split("#")[0] for row in documents}
    manifest = ShardManifest.read(run_dir / "shards" / "manifest.json")
    seen: dict[str, list[str]] = {"train": [], "heldout": []}
    for entry in manifest.shards:
        reader = open_shard(manifest.format, run_dir / "shards", entry.bin_file)
        seen[entry.split] += [original_of[tuple(int(t) for t in reader[i])] for i in range(len(reader))]
    assert len(seen["train"]) + len(seen["heldout"]) == len(documents)  # every copy is in one shard
    assert seen["heldout"] and seen["train"]
    assert not set(seen["heldout"]) & set(seen["train"])  # no document, nor a copy of one, on both sides
    assert len(seen["heldout"]) > len(set(seen["heldout"]))  # held-out documents brought their copies along
    assert manifest.splits["heldout"].documents == len(seen["heldout"])
