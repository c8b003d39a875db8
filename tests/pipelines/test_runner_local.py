"""The runner end to end on the in-process engine: layout, drops, shards, resume, and run-dir safety."""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpusmill.core.recipe import parse_recipe
from corpusmill.pipelines.runner import RunDirError, run_recipe
from corpusmill.pipelines.verify import verify_run

ENGLISH = [
    "The committee met on Tuesday to discuss the new budget for the public library and its reading rooms.",
    "Researchers found that the river had carried more sediment this spring than in any year they measured.",
    "Our guide explains how to prune apple trees in late winter so that they bear more fruit in autumn.",
    "The old railway station was restored by volunteers who spent three summers repairing its wooden roof.",
    "Students in the evening class learned how to write simple programs that sort lists of numbers.",
    "A small bakery on the corner has started selling bread made from grain grown on nearby farms.",
]
VOCABULARY = [
    "house",
    "water",
    "people",
    "garden",
    "school",
    "winter",
    "morning",
    "village",
    "family",
    "teacher",
    "window",
    "market",
    "river",
    "paper",
    "friend",
    "summer",
    "evening",
    "kitchen",
    "doctor",
    "island",
    "forest",
    "letter",
    "music",
    "bridge",
    "mountain",
    "station",
    "weather",
    "children",
    "animal",
    "history",
    "travel",
    "country",
    "picture",
    "number",
    "question",
    "answer",
    "language",
    "science",
    "city",
]
GERMAN = (
    "Die Stadtbibliothek bleibt während der Sommerferien geöffnet und bietet neue Lesekurse für Kinder an."
)


def _corpus(tmp_path: Path) -> Path:
    rng = random.Random(5)
    rows = []
    for index in range(40):
        words = " ".join(rng.choice(VOCABULARY) for _ in range(60))
        rows.append({"id": f"en-{index:03d}", "text": f"{rng.choice(ENGLISH)} The {words}."})
    rows.append({"id": "zz-dup-of-en-007", "text": rows[7]["text"]})
    rows.append({"id": "de-001", "text": GERMAN})
    path = tmp_path / "input" / "docs.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    second = tmp_path / "input" / "more.jsonl"
    second.write_text(json.dumps({"id": "aa-near", "text": rows[3]["text"] + " Extra."}) + "\n")
    return tmp_path / "input"


def _recipe(input_dir: Path, languages: list[str] = ["en"]) -> object:  # noqa: B006
    return parse_recipe(
        {
            "name": "unit",
            "input": {"paths": [str(input_dir / "*.jsonl")], "part_bytes": 1},  # one part per file
            "stages": [
                {"stage": "langid", "languages": languages},
                {"stage": "dedup_exact"},
                {"stage": "dedup_minhash", "threshold": 0.7},
                {"stage": "tokenize"},
                {"stage": "write_shards"},
            ],
            "output": {"batch_size": 7},
        }
    )


def test_run_writes_the_documented_layout_and_counts_every_drop(tmp_path: Path) -> None:
    input_dir = _corpus(tmp_path)
    run_dir = tmp_path / "run"
    result = run_recipe(_recipe(input_dir), engine="local", output=run_dir)
    assert not result.already_complete
    for name in ("recipe.yaml", "stats.json", "manifest.json", "shards/manifest.json", "report/index.html"):
        assert (run_dir / name).is_file(), name
    kept = pq.read_table(run_dir / "documents").to_pydict()
    rejected = pq.read_table(run_dir / "rejected").to_pylist()
    reasons = {row["source_id"]: row["drop_reason"] for row in rejected}
    assert reasons["de-001"] == "lang_not_allowed"
    # Ids are `<file>:<line>` and the smallest id (in string order) survives: docs.jsonl:41 < docs.jsonl:8.
    assert reasons["en-007"] == "exact_duplicate"
    assert "zz-dup-of-en-007" in kept["source_id"]
    assert reasons["aa-near"] == "near_duplicate"  # docs.jsonl:4 < more.jsonl:1
    assert "en-003" in kept["source_id"]
    assert len(set(kept["id"])) == len(kept["id"]) and "docs.jsonl:4" in kept["id"]
    # Nothing is lost: every input document is either kept or rejected with a reason.
    assert len(kept["id"]) + len(rejected) == 43
    assert all(row["drop_stage"] for row in rejected)
    summary = {row.label: row for row in result.summary.stages}
    assert summary["01-langid_v1"].dropped == {"lang_not_allowed": 1}
    assert summary["00-read"].docs_out == 43
    assert result.summary.documents_out == len(kept["id"])
    assert result.summary.tokens_written == sum(kept["token_count"])
    # What setting up each stage cost, per set-up: one worker (this process) set up langid, in one phase.
    setups = {
        stage["label"]: stage["moments"].get("setup.cpu_seconds")
        for stage in json.loads((run_dir / "stats.json").read_text())["stages"]
    }
    assert setups["01-langid_v1"]["count"] == 1 and setups["01-langid_v1"]["min"] >= 0
    assert all(setups[label] for label in setups if label != "00-read"), setups
    report = verify_run(run_dir)
    assert report.problems == []
    assert report.documents_checked == len(kept["id"])


def test_rerun_of_a_finished_run_does_nothing(tmp_path: Path) -> None:
    input_dir = _corpus(tmp_path)
    run_dir = tmp_path / "run"
    run_recipe(_recipe(input_dir), engine="local", output=run_dir)
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    again = run_recipe(_recipe(input_dir), engine="local", output=run_dir)
    assert again.already_complete
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()} == before


def test_interrupted_run_resumes_and_reproduces_the_same_output(tmp_path: Path) -> None:
    input_dir = _corpus(tmp_path)
    reference = tmp_path / "reference"
    run_recipe(_recipe(input_dir), engine="local", output=reference)
    run_dir = tmp_path / "run"
    run_recipe(_recipe(input_dir), engine="local", output=run_dir)
    # Simulate a crash while tokenizing the second part: its marker, everything after it and the manifest are gone.
    (run_dir / "manifest.json").unlink()
    for marker in [
        *(run_dir / "stages").glob("04-*/part-00001.done.json"),
        *(p for p in (run_dir / "stages").glob("05-*/**/*") if p.is_file()),
    ]:
        marker.unlink()
    for path in (run_dir / "shards").iterdir():
        path.unlink()
    untouched = run_dir / "stages" / "01-langid_v1" / "part-00000.parquet"
    mtime = untouched.stat().st_mtime_ns
    run_recipe(_recipe(input_dir), engine="local", output=run_dir)
    assert untouched.stat().st_mtime_ns == mtime
    # Where the work ran: the parts done again under this host, those the first run finished under `reused`.
    nodes = json.loads((run_dir / "stats.json").read_text())["nodes"]
    (computed,) = json.loads((reference / "stats.json").read_text())["nodes"].values()
    assert set(nodes) == {socket.gethostname(), "reused"}
    assert nodes[socket.gethostname()]["phases"] == {"05-write_shards_v3": 1, "05-write_shards_v3 gather": 1}
    assert {"01-langid_v1", "04-tokenize_v1"} <= nodes["reused"]["phases"].keys()
    assert nodes["reused"]["parts"] + nodes[socket.gethostname()]["parts"] == computed["parts"]
    for marker in (run_dir / "stages").rglob("*.done.json"):  # markers say nothing of where they were written
        assert not {"node", "resumed"} & json.loads(marker.read_text()).keys(), marker
    ref_manifest = json.loads((reference / "shards" / "manifest.json").read_text())
    new_manifest = json.loads((run_dir / "shards" / "manifest.json").read_text())
    assert [s["bin_sha256"] for s in new_manifest["shards"]] == [
        s["bin_sha256"] for s in ref_manifest["shards"]
    ]
    assert verify_run(run_dir).problems == []


def test_a_run_dir_of_another_recipe_is_refused(tmp_path: Path) -> None:
    input_dir = _corpus(tmp_path)
    run_dir = tmp_path / "run"
    run_recipe(_recipe(input_dir), engine="local", output=run_dir)
    with pytest.raises(RunDirError, match="another recipe"):
        run_recipe(_recipe(input_dir, languages=["de"]), engine="local", output=run_dir)


def test_verify_notices_a_tampered_shard(tmp_path: Path) -> None:
    input_dir = _corpus(tmp_path)
    run_dir = tmp_path / "run"
    run_recipe(_recipe(input_dir), engine="local", output=run_dir)
    shard = sorted((run_dir / "shards").glob("*.bin"))[0]
    data = bytearray(shard.read_bytes())
    data[8] ^= 0xFF
    shard.write_bytes(bytes(data))
    problems = verify_run(run_dir).problems
    assert any("sha256" in p for p in problems)
    assert any("do not decode" in p for p in problems)


def test_without_keep_rejected_drops_are_counted_but_not_written(tmp_path: Path) -> None:
    input_dir = _corpus(tmp_path)
    data = _recipe(input_dir).model_dump(mode="json")
    data["stages"] = [{"stage": s["stage"], **s["params"]} for s in data["stages"]]
    data["output"]["keep_rejected"] = False
    result = run_recipe(parse_recipe(data), engine="local", output=tmp_path / "run")
    assert not list((tmp_path / "run").glob("rejected/*.parquet"))
    dropped = {reason: n for row in result.summary.stages for reason, n in row.dropped.items()}
    assert dropped["lang_not_allowed"] == 1
    assert dropped["exact_duplicate"] == 1
    assert result.summary.documents_out == 43 - 3


def test_shards_do_not_depend_on_how_the_input_was_split(tmp_path: Path) -> None:
    input_dir = _corpus(tmp_path)
    one_part = _recipe(input_dir).model_copy(
        update={"input": _recipe(input_dir).input.model_copy(update={"part_bytes": 1 << 30})}
    )
    run_recipe(_recipe(input_dir), engine="local", output=tmp_path / "two")
    run_recipe(one_part, engine="local", output=tmp_path / "one")
    two = json.loads((tmp_path / "two" / "shards" / "manifest.json").read_text())
    one = json.loads((tmp_path / "one" / "shards" / "manifest.json").read_text())
    assert len(list((tmp_path / "two" / "stages" / "01-langid_v1").glob("*.parquet"))) == 2
    assert len(list((tmp_path / "one" / "stages" / "01-langid_v1").glob("*.parquet"))) == 1
    assert [(s["bin_file"], s["bin_sha256"]) for s in two["shards"]] == [
        (s["bin_file"], s["bin_sha256"]) for s in one["shards"]
    ]
    assert two["recipe"]["fingerprint"] != one["recipe"]["fingerprint"]
    assert verify_run(tmp_path / "one").problems == []
