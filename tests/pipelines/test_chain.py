"""Per-part phases of several steps run as one engine phase (`chain.py`), and what the runner makes of it.

The chain itself on small tasks: each link reads what the one before left, a sink-like link passes its input
on, a part that a link leaves empty goes no further, every link is closed, and results read back from
markers carry no timings. Then whole runs: a recipe whose map step empties one part runs its phases chained
(the keys with the map step; the dedup drop, tokenizing and the shard writes together), gives the same
documents, shards and stats as the same recipe with every phase run alone, and records one timing entry per
step's phase, each step after the one before.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from corpusmill.core.recipe import Recipe, parse_recipe
from corpusmill.pipelines import runner
from corpusmill.pipelines.chain import LINKS, SECONDS, ChainTask, Link, PhaseChain
from corpusmill.pipelines.graph import plan_steps
from corpusmill.pipelines.local_engine import LocalEngine
from corpusmill.pipelines.parts import INTERMEDIATE, PartSpec, markers_only, reading_back
from corpusmill.pipelines.runner import run_recipe
from corpusmill.pipelines.timings import TIMINGS_FILE


@dataclass
class _Suffix:
    """Writes nothing; its "output" is the input's first uri with a suffix, or none for the named parts."""

    suffix: str
    empties: tuple[str, ...] = ()
    seen: list[str] = field(default_factory=list)
    closed: int = 0

    def setup(self) -> None:
        pass

    def close(self) -> None:
        self.closed += 1

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        self.seen.append(part.uris[0] if part.uris else part.name)
        output = None if part.name in self.empties else f"{part.uris[0]}{self.suffix}"
        return {"part": part.name, "output": output, "identity": part.identity, "stats": {}, "rows": 1}


def _parts(count: int) -> list[PartSpec]:
    return [PartSpec(f"part-{n}", (f"in-{n}",), "jsonl", identity=f"id-{n}") for n in range(count)]


def test_each_link_reads_what_the_one_before_left() -> None:
    first, sink, last = _Suffix(".a", empties=("part-1",)), _Suffix(".s"), _Suffix(".b")
    chain = ChainTask((Link(first), Link(sink, passes_input=True), Link(last)))
    zero, one = chain(_parts(2)[0]), chain(_parts(2)[1])
    assert first.seen == ["in-0", "in-1"]
    # The sink-like link passes its input on: the last link reads the first link's output, not the sink's.
    assert sink.seen == ["in-0.a"] and last.seen == ["in-0.a"]
    assert [r["output"] for r in zero[LINKS]] == ["in-0.a", "in-0.a.s", "in-0.a.b"]
    # part-1 kept nothing after the first link: the others never see it.
    assert one[LINKS][1:] == [None, None] and one[LINKS][0]["output"] is None
    assert len(zero[SECONDS]) == 3 and all(seconds >= 0 for seconds in zero[SECONDS])
    chain.close()
    assert (first.closed, sink.closed, last.closed) == (1, 1, 1)


def test_results_read_back_from_markers_carry_no_seconds() -> None:
    chain = ChainTask((Link(_Suffix(".a")), Link(_Suffix(".b"))))
    with markers_only():
        assert reading_back()
        result = chain(_parts(1)[0])
    assert SECONDS not in result and not reading_back()


def test_the_driver_splits_a_chain_into_its_phases() -> None:
    chain = PhaseChain(_parts(3))
    folded: list[str] = []
    first = chain.add("step-1", "01-first", _Suffix(".a", empties=("part-2",)), 1.0)
    second = chain.add(
        "step-2", "02-sink", _Suffix(".s"), 2.0, passes_input=True, fold=lambda r: folded.append(r["part"])
    )
    third = chain.add("step-3", "03-last", _Suffix(".b"), 1.0)
    assert chain.holds("step-2") and chain.description() == "01-first, 02-sink, 03-last"
    ran = chain.run(LocalEngine())
    assert ran == [first, second, third] and chain.queue == [] and not chain.holds("step-2")
    assert [r["part"] for r in first.results or []] == ["part-0", "part-1", "part-2"]
    assert [r["part"] for r in second.results or []] == ["part-0", "part-1"] == sorted(folded)
    assert [p.name for p in third.parts] == ["part-0", "part-1"]
    # Each link's result names the node the chain ran on.
    assert all(r.get("node") for r in third.results or [])
    # The parts after the chain: the last link's outputs, as intermediate files.
    assert chain.parts == [
        PartSpec(f"part-{n}", (f"in-{n}.a.b",), INTERMEDIATE, identity=f"id-{n}") for n in range(2)
    ]
    assert sum(queued.share for queued in ran) == pytest.approx(1.0)


def _corpus(directory: Path) -> Path:
    """Three files: the last has only blocked URLs (the map step empties its part); the others share pages."""
    texts = [
        f"Paragraph {n} about {topic} with enough words to be a document."
        for n, topic in enumerate("abcdefgh")
    ]
    for file in range(3):
        rows = []
        for n, text in enumerate(texts):
            host = "blocked.example" if file == 2 else "fine.example"
            rows.append(
                {
                    "id": f"{file}-{n}",
                    "url": f"https://{host}/{file}/{n}",
                    "text": text if n % 2 else f"{text} {file}",
                }
            )
        (directory / f"f-{file}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return directory


def _recipe(directory: Path) -> Recipe:
    return parse_recipe(
        {
            "name": "chained",
            "seed": 3,
            "input": {"paths": [str(directory / "*.jsonl")], "part_bytes": 1},
            "stages": [
                {"stage": "url_filter", "use_default_lists": False, "patterns": [r"blocked\.example"]},
                {"stage": "dedup_exact"},
                {"stage": "tokenize"},
                {"stage": "write_shards"},
            ],
            "output": {"batch_size": 4},
        }
    )


def _run(corpus: Path, run_dir: Path) -> dict[str, Any]:
    run_recipe(_recipe(corpus), engine="local", output=run_dir)
    return json.loads((run_dir / TIMINGS_FILE).read_text())["passes"][-1]


def test_a_chained_run_equals_one_whose_phases_run_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = _corpus(tmp_path)
    chained = _run(corpus, tmp_path / "chained")
    monkeypatch.setattr(runner, "CHAIN_PHASES", False)
    alone = _run(corpus, tmp_path / "alone")

    def engine_phases(one: dict[str, Any]) -> list[str]:
        names = []
        for step in one["steps"]:
            for phase in step["phases"]:
                name = phase.get("chain", phase["phase"])
                if name not in names:
                    names.append(name)
        return names

    urls, dedup, tokenize, shards = (step.dirname for step in plan_steps(_recipe(corpus)))
    assert engine_phases(chained) == [
        f"{urls}, {dedup} keys",
        f"{dedup} resolve",
        f"{dedup} apply, {tokenize}, {shards}",
        f"{shards} gather",
    ]
    assert len(engine_phases(alone)) == 7
    # One entry per step's phase either way, each step after the one before.
    for one in (chained, alone):
        assert [[p["phase"] for p in s["phases"]] for s in one["steps"]] == [
            [urls],
            [f"{dedup} keys", f"{dedup} resolve", f"{dedup} apply"],
            [tokenize],
            [shards, f"{shards} gather"],
        ]
        for before, after in itertools.pairwise(one["steps"]):
            assert after["started_at"] >= before["finished_at"]
    # The blocked file's part went no further than the map step.
    assert [s["parts"] for s in chained["steps"]] == [3, 2, 2, 2]
    for name in ("documents", "rejected", "shards"):
        one = sorted(p.relative_to(tmp_path / "chained") for p in (tmp_path / "chained" / name).rglob("*"))
        other = sorted(p.relative_to(tmp_path / "alone") for p in (tmp_path / "alone" / name).rglob("*"))
        assert one == other and one
        for path in one:
            if (tmp_path / "chained" / path).is_file():
                assert (tmp_path / "chained" / path).read_bytes() == (tmp_path / "alone" / path).read_bytes()
    stats = [json.loads((tmp_path / run / "stats.json").read_text()) for run in ("chained", "alone")]
    counters = [{stage["label"]: stage["counters"] for stage in one["stages"]} for one in stats]
    assert counters[0] == counters[1]  # (set-up times differ)
    assert counters[0]["01-url_filter_v1"]["dropped.url_filter:pattern"] == 8
    assert stats[0]["documents_out"] == stats[1]["documents_out"] > 0


def test_a_chain_killed_midway_resumes_link_by_link(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    reference = tmp_path / "reference"
    _run(corpus, reference)
    run_dir = tmp_path / "run"
    _run(corpus, run_dir)
    # As if killed in the chain: one part's tokenize and shard markers, and everything after, are gone.
    (run_dir / "manifest.json").unlink()
    for marker in [
        *(run_dir / "stages").glob("03-*/part-00001.done.json"),
        *(run_dir / "stages").glob("04-*/*.done.json"),
    ]:
        marker.unlink()
    resumed = _run(corpus, run_dir)
    _, dedup, tokenize, _ = (step.dirname for step in plan_steps(_recipe(corpus)))
    steps = {s["step"]: s for s in resumed["steps"]}
    assert steps[dedup]["state"] == "reused"
    assert (steps[tokenize]["parts_run"], steps[tokenize]["parts_reused"]) == (1, 1)
    files = json.loads((run_dir / "manifest.json").read_text())["files"]
    assert files == json.loads((reference / "manifest.json").read_text())["files"]
