"""`timings.json`: the runner's record of when each step started and ended, one pass per invocation.

A small recipe with a step of every kind (group, map, plan, sink) on the in-process engine: a run records
every planned step in order; a run that fails and is resumed keeps the failed pass and appends one that
shows what it found finished; `--restart` starts the history over; a finished run started again records
nothing; and none of it reaches stats.json or the manifest, which must stay the same across runs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from corpusmill.core.recipe import Recipe, parse_recipe
from corpusmill.pipelines import runner
from corpusmill.pipelines.graph import plan_steps
from corpusmill.pipelines.runner import run_recipe
from corpusmill.pipelines.timings import TIMINGS_FILE


def _write_corpus(directory: Path) -> Path:
    rng = random.Random(11)
    for file in range(2):
        rows = []
        for n in range(20):
            words = " ".join(f"word{rng.randrange(500)}" for _ in range(30))
            rows.append({"id": f"{file}-{n}", "text": f"Note {n}: {words}.", "lang": "en" if n % 3 else "de"})
        rows.append({"id": f"{file}-copy", "text": rows[0]["text"], "lang": "en"})
        (directory / f"f-{file}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return directory


def _recipe(directory: Path) -> Recipe:
    return parse_recipe(
        {
            "name": "timed",
            "seed": 1,
            "input": {"paths": [str(directory / "*.jsonl")], "part_bytes": 1, "lang_field": "lang"},
            "stages": [
                {"stage": "dedup_exact"},
                {"stage": "tokenize"},
                {
                    "stage": "mix",
                    "domain_column": "lang",
                    "multipliers": {"en": 0.8},
                    "default_multiplier": 1.5,
                },
                {"stage": "write_shards"},
            ],
            "output": {"batch_size": 8},
        }
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_corpus(tmp_path_factory.mktemp("input"))


@pytest.fixture(scope="module")
def reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run, timed."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run_recipe(_recipe(corpus), engine="local", output=run_dir)
    return run_dir


def _passes(run_dir: Path) -> list[dict[str, Any]]:
    data = json.loads((run_dir / TIMINGS_FILE).read_text())
    assert data["format"] == "corpusmill-timings" and data["format_version"] == 1
    return data["passes"]


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _assert_closed(span: dict[str, Any]) -> None:
    assert _at(span["finished_at"]) >= _at(span["started_at"]), span
    assert span["seconds"] >= 0, span


def test_a_run_records_every_step_in_order(corpus: Path, reference: Path) -> None:
    (one,) = _passes(reference)
    assert one["pass"] == 1 and one["state"] == "done" and one["engine"] == "local"
    planned = plan_steps(_recipe(corpus))
    assert [s["step"] for s in one["steps"]] == [s.dirname for s in planned]
    assert [s["kind"] for s in one["steps"]] == ["group", "map", "plan", "sink"]
    assert [s["stages"] for s in one["steps"]] == [[p.label for p in s.stages] for s in planned]
    for step in one["steps"]:
        _assert_closed(step)
        assert step["state"] == "done"
        assert (step["parts"], step["parts_run"], step["parts_reused"]) == (2, 2, 0), step
        assert step["phases"] and all(phase["seconds"] >= 0 for phase in step["phases"])
    # The phases of the plan step: its accounting rounds, then applying the plan.
    assert one["steps"][2]["phases"][-1]["phase"] == f"{planned[2].dirname} apply"
    for span in (one, one["setup"], one["finish"]):
        _assert_closed(span)
    # In order, one after the other: setup, the steps, finish.
    ends = [one["setup"], *one["steps"], one["finish"]]
    for before, after in itertools.pairwise(ends):
        assert _at(after["started_at"]) >= _at(before["finished_at"])
    assert one["seconds"] >= sum(s["seconds"] for s in one["steps"])
    # Timings stay out of what runs are compared on.
    manifest = json.loads((reference / "manifest.json").read_text())
    assert TIMINGS_FILE not in {f["path"] for f in manifest["files"]}
    stats = json.loads((reference / "stats.json").read_text())
    assert set(stats) == {
        "recipe",
        "fingerprint",
        "engine",
        "stages",
        "documents_out",
        "tokens_written",
        "plans",
        "sinks",
        "incremental",
        "nodes",
    }
    for marker in (reference / "stages").rglob("*.done.json"):
        assert "started_at" not in marker.read_text(), marker


def test_a_finished_run_started_again_records_nothing(corpus: Path, reference: Path) -> None:
    before = (reference / TIMINGS_FILE).read_bytes()
    assert run_recipe(_recipe(corpus), engine="local", output=reference).already_complete
    assert (reference / TIMINGS_FILE).read_bytes() == before


def test_a_failed_run_keeps_its_pass_and_the_resume_appends_one(
    corpus: Path, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the mix broke\nsecond line")

    with monkeypatch.context() as patch:
        # The mix's plan breaks after its first accounting round, which runs in one engine phase with the
        # dedup step's apply and the tokenize step: those two are done.
        patch.setattr(runner, "_canonical", broken)
        with pytest.raises(RuntimeError, match="the mix broke"):
            run_recipe(_recipe(corpus), engine="local", output=run_dir)
    (failed,) = _passes(run_dir)
    assert failed["state"] == "failed" and failed["error"] == "RuntimeError: the mix broke"
    assert [s["state"] for s in failed["steps"]] == ["done", "done", "failed"]
    for step in failed["steps"]:
        _assert_closed(step)
    assert failed["finish"] is None
    _assert_closed(failed)
    # Part of the second step is lost too, as if the process died while writing it.
    (tokenize_dir,) = (run_dir / "stages").glob("02-*")
    (tokenize_dir / "part-00001.done.json").unlink()

    run_recipe(_recipe(corpus), engine="local", output=run_dir)
    first, second = _passes(run_dir)
    assert first == failed  # history is kept as it was written
    assert second["pass"] == 2 and second["state"] == "done"
    steps = {s["kind"]: s for s in second["steps"]}
    assert [s["step"] for s in second["steps"]] == [s.dirname for s in plan_steps(_recipe(corpus))]
    assert steps["group"]["state"] == "reused"
    assert (steps["group"]["parts_run"], steps["group"]["parts_reused"]) == (0, 2)
    assert (steps["map"]["parts_run"], steps["map"]["parts_reused"]) == (1, 1)
    assert steps["map"]["state"] == "done" and steps["plan"]["parts_run"] == 2
    for step in second["steps"]:
        _assert_closed(step)
    # The resumed run's outputs are the uninterrupted run's, file for file.
    files = json.loads((run_dir / "manifest.json").read_text())["files"]
    assert files == json.loads((reference / "manifest.json").read_text())["files"]

    # `--restart` starts the history over with the run.
    run_recipe(_recipe(corpus), engine="local", output=run_dir, restart=True)
    (fresh,) = _passes(run_dir)
    assert fresh["pass"] == 1 and {s["state"] for s in fresh["steps"]} == {"done"}
