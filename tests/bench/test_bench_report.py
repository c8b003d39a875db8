"""The bench follows the runner's phases and corpusmill's MinHash settings, and its table computes what it says."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from bench.measure import Clock
from bench.report import CHAIN_HEAD, CHAIN_TAIL, build_rows, format_table, projection, targets
from bench.run_corpusmill import PhaseRecorder, phase_span

from bench import spec
from corpusmill.core.recipe import parse_recipe
from corpusmill.core.stage import resolve_stage
from corpusmill.pipelines.graph import plan_steps
from corpusmill.pipelines.runner import run_recipe


def test_bench_recipe_steps_map_to_the_table_rows(tmp_path: Path) -> None:
    steps = plan_steps(spec.recipe(tmp_path))
    names = [step.dirname for step in steps]
    assert [phase_span(name) for name in names] == ["map", "dedup_other", "tokenize", "write"]
    dedup = names[1]
    phases = ("keys", "candidates", "attach", "confirm", "components 3", "resolve", "apply")
    assert [phase_span(f"{dedup} {p}") for p in phases] == [
        "dedup_signatures",
        *["dedup_grouping"] * 5,
        "dedup_apply",
    ]
    assert phase_span(f"{names[3]} gather") == "write"
    # The engine phases that run several steps' phases (`pipelines/chain.py`), as the report's rows name them.
    assert phase_span(f"{names[0]}, {dedup} keys") == CHAIN_HEAD
    assert phase_span(f"{dedup} apply, {names[2]}, {names[3]}") == CHAIN_TAIL


def test_minhash_settings_are_the_stage_defaults() -> None:
    settings = spec.minhash_settings(0.8)
    params = resolve_stage("dedup_minhash").Params.model_validate({"threshold": 0.8})
    assert (settings.bands, settings.rows) == params.banding()
    assert settings.bands * settings.rows <= settings.num_perm == params.num_perm
    assert settings.ngram_size == params.ngram_size and settings.seed == params.seed
    assert spec.minhash_settings(0.6).rows < settings.rows  # a lower threshold needs narrower bands


def test_phase_recorder_times_every_phase_of_a_real_run(tmp_path: Path) -> None:
    docs = tmp_path / "in"
    docs.mkdir()
    text = "the quick brown fox jumps over the lazy dog near the river bank today " * 5
    for part in range(2):
        lines = [
            {"id": f"d{part}{i}", "text": text + ("" if i < 2 else f" unique {part} {i} " * 30)}
            for i in range(4)
        ]
        (docs / f"p{part}.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    recipe = parse_recipe(
        {
            "name": "phases",
            "input": {"paths": [str(docs / "*.jsonl")], "part_bytes": 1},
            "stages": [{"stage": "dedup_minhash"}, {"stage": "tokenize"}, {"stage": "write_shards"}],
        }
    )
    clock = Clock()
    recorder = PhaseRecorder(clock)
    start = clock.mark("start")
    run_recipe(recipe, engine="local", output=tmp_path / "run", progress=recorder)
    end = clock.mark("end")
    recorder.close(start, end)
    expected = {"startup", "dedup_signatures", "dedup_grouping", CHAIN_TAIL, "write", "finish"}
    assert set(clock.spans) == expected
    intervals = sorted(i for spans in clock.spans.values() for i in spans)
    assert intervals[0][0] == start.at and intervals[-1][1] == end.at
    assert all(a[1] == b[0] for a, b in itertools.pairwise(intervals))  # contiguous, no gaps


def _run(cpu: dict[str, float], total_cpu: float, tokens: int, setup_cpu: float = 0.0) -> dict:
    return {
        "costs": {name: {"cpu_s": value, "wall_s": value} for name, value in cpu.items()},
        "total": {"cpu_s": total_cpu, "wall_s": total_cpu / 2},
        "tokens": tokens,
        "docs_out": 50,
        "peak_rss_bytes": 2_000_000,
        "setup_cpu_s": setup_cpu,
    }


def test_rows_are_documents_per_cpu_second_and_ratios_compare_the_right_columns() -> None:
    results = {
        "corpus": {"records": 100, "html_bytes": 50_000_000, "files": 2, "by_kind": {"original": 100}},
        "machine": {"cores": 2, "load_before": "0", "load_after": "0"},
        "settings": {"minhash": spec.minhash_settings(0.8).to_json()},
        "runs": {
            "corpusmill-bare": _run(
                {"startup": 1, "read": 1, "extract": 8, "langid": 0.5, "gopher": 0.5},
                12.0,
                1_000_000,
                setup_cpu=2.0,
            ),
            "corpusmill-ray": _run({CHAIN_HEAD: 20, "startup": 5}, 40.0, 1_000_000, setup_cpu=3.0),
            "datatrove-bare": _run({"read": 2, "extract": 10, "langid": 1, "gopher": 1}, 16.0, 900_000),
            "datatrove": _run({"map": 25}, 20.0, 900_000),
            "corpusmill-beam": {"job": "corpusmill-beam", "error": "exit 1; see log"},
        },
        "quality": {"dedup": {"corpusmill-ray": {"precision": 0.9, "recall": 1.0, "f1": 0.947}}},
    }
    rows = {row["label"]: row for row in build_rows(results)}
    assert rows["  extract"]["corpusmill-bare"] == pytest.approx(100 / 8)
    assert rows["  extract"]["ratio"] == pytest.approx((100 / 8) / (100 / 10))
    assert rows["read..Gopher step"]["corpusmill-bare"] == pytest.approx(100 / 10)
    assert rows["read..Gopher step"]["datatrove"] == pytest.approx(100 / 25)
    # An engine's map step runs with the dedup keys: its cost shows in the row of both.
    assert "corpusmill-ray" not in rows["read..Gopher step"]
    assert rows["read..signatures"]["corpusmill-ray"] == pytest.approx(100 / 20)
    assert rows["end to end"]["ratio"] == pytest.approx((100 / 40) / (100 / 20))  # Ray against datatrove
    assert rows["start-up"]["corpusmill-ray"] == pytest.approx(20) and rows["start-up"]["ratio"] is None
    assert rows["start-up"]["corpusmill-bare"] == pytest.approx(100)
    assert "corpusmill-beam" not in rows["end to end"]
    assert rows["core-hours / 1T tokens"]["corpusmill-ray"] == pytest.approx(40 / 1e6 * 1e12 / 3600)
    assert projection(results["runs"]["datatrove"], 50_000_000)["core_hours_per_TB_html"] == pytest.approx(
        20 / 50e6 * 1e12 / 3600
    )
    results["table"] = build_rows(results)
    text = format_table(results)
    assert "FAILED corpusmill-beam: exit 1; see log" in text and "read..Gopher step" in text
    verdicts = {what: (value, met) for what, value, _, met in targets(results)}
    assert verdicts["end to end, cm Ray / datatrove (x)"] == (pytest.approx(0.5), False)
    assert rows["  stage set-up CPU s"]["corpusmill-ray"] == 3.0
    # Per document: the run less the engine's start-up (5 s) and its workers' stage set-ups (3 s), against the
    # bare loop less its own start-up (1 s) and set-up (2 s); the whole run is printed without a goal.
    # Printed without a goal: `bench.engine_pairs` checks it.
    assert verdicts["Ray overhead per doc (%; see engine_pairs)"] == (
        pytest.approx((32 / 9 - 1) * 100),
        None,
    )
    assert verdicts["  Ray, whole run with start/stop (%)"] == (pytest.approx((40 / 12 - 1) * 100), None)
    assert verdicts["Beam overhead per doc (%; see engine_pairs)"] == (None, None)  # its run failed
    assert verdicts["  Beam, whole run with start/stop (%)"] == (None, None)
    assert verdicts["dedup F1, cm Ray"] == (pytest.approx(0.947), False)
    assert verdicts["tokenizer vs HF, identical ids (x)"] == (None, None)  # not measured in this run
    results["tokenizer"] = {"ids_equal": False, "ratio": 7.0}
    assert dict((w, v) for w, v, _, _ in targets(results))["tokenizer vs HF, identical ids (x)"] is None
    results["tokenizer"]["ids_equal"] = True
    assert dict((w, m) for w, _, _, m in targets(results))["tokenizer vs HF, identical ids (x)"] is True


def test_a_job_keeps_its_cheapest_repeat_and_shows_every_one() -> None:
    from bench.launch import cheapest

    slow, fast = _run({"map": 30}, 30.0, 1_000), _run({"map": 20}, 22.0, 1_000)
    failed = {"job": "corpusmill-ray", "error": "exit 1; see log\ntraceback"}
    kept = cheapest([slow, failed, fast])
    assert kept["total"]["cpu_s"] == 22.0 and kept["costs"]["map"]["cpu_s"] == 20
    assert kept["repeats"] == [
        {"cpu_s": 30.0, "wall_s": 15.0},
        {"error": failed["error"]},
        {"cpu_s": 22.0, "wall_s": 11.0},
    ]
    assert "repeats" not in fast  # the attempt itself is left as it was
    assert cheapest([failed, failed])["error"] == failed["error"]  # every repeat failed: the job failed

    results = {
        "corpus": {"records": 100, "html_bytes": 50_000_000, "files": 2, "by_kind": {"original": 100}},
        "machine": {"cores": 2, "load_before": "0", "load_after": "0"},
        "settings": {"minhash": spec.minhash_settings(0.8).to_json()},
        "runs": {"corpusmill-bare": cheapest([slow, fast]), "corpusmill-ray": kept},
    }
    rows = {row["label"]: row for row in build_rows(results)}
    assert rows["  CPU s, every repeat"]["corpusmill-bare"] == "30/22"
    assert rows["  CPU s, every repeat"]["corpusmill-ray"] == "30/x/22"
    results["table"] = build_rows(results)
    assert "FAILED corpusmill-ray, 1 of its repeats: exit 1; see log" in format_table(results)


def test_copies_of_a_job_become_their_mean_and_a_failed_copy_fails_it() -> None:
    from bench.launch import mean_of_copies

    one = {**_run({"extract": 8, "gopher": 2}, 12.0, 1_000, setup_cpu=1.0), "extracted_path": "copy-1/x"}
    two = {
        **_run({"extract": 10, "gopher": 2, "only_here": 1}, 14.0, 1_000, setup_cpu=2.0),
        "peak_rss_bytes": 3_000_000,
    }
    merged = mean_of_copies([one, two])
    assert merged["total"] == {"cpu_s": 13.0, "wall_s": 6.5} and merged["setup_cpu_s"] == 1.5
    assert merged["costs"] == {
        "extract": {"cpu_s": 9.0, "wall_s": 9.0},
        "gopher": {"cpu_s": 2.0, "wall_s": 2.0},
    }  # spans of every copy only
    assert merged["peak_rss_bytes"] == 3_000_000 and merged["extracted_path"] == "copy-1/x"
    assert merged["copies"] == [{"cpu_s": 12.0, "wall_s": 6.0}, {"cpu_s": 14.0, "wall_s": 7.0}]
    failed = {"job": "corpusmill-bare", "error": "exit 1"}
    assert mean_of_copies([one, failed]) == failed


def test_per_document_rate_sets_each_sides_skeleton_run_apart() -> None:
    results = {
        "corpus": {"records": 105, "html_bytes": 50_000_000, "files": 5, "by_kind": {"original": 105}},
        "machine": {"cores": 2, "load_before": "0", "load_after": "0"},
        "settings": {"minhash": spec.minhash_settings(0.8).to_json()},
        "runs": {
            "corpusmill-ray": _run({"map": 20, "startup": 5}, 26.0, 1_000_000),
            "datatrove": _run({"map": 25}, 44.0, 900_000),
        },
        "fixed": {
            "records": 5,
            "runs": {
                "corpusmill-ray": _run({"map": 1, "startup": 5}, 6.0, 100),
                "datatrove": _run({"map": 2}, 4.0, 100),
            },
        },
    }
    rows = {row["label"]: row for row in build_rows(results)}
    assert rows["  fixed costs CPU s"]["corpusmill-ray"] == 6.0
    assert rows["  per doc, fixed apart"]["corpusmill-ray"] == pytest.approx(100 / 20)
    assert rows["  per doc, fixed apart"]["datatrove"] == pytest.approx(100 / 40)
    assert rows["  per doc, fixed apart"]["ratio"] == pytest.approx(2.0)
    assert rows["end to end"]["ratio"] == pytest.approx(44 / 26)  # the whole runs, fixed costs included
    results["table"] = build_rows(results)
    verdicts = {what: (value, met) for what, value, _, met in targets(results)}
    assert verdicts["  per document, fixed costs apart (x)"] == (pytest.approx(2.0), True)
    assert "per doc, fixed apart" in format_table(results)
    del results["fixed"]  # an older results file, or --fixed-runs ''
    assert "  per doc, fixed apart" not in {row["label"] for row in build_rows(results)}


def test_skeleton_keeps_the_files_and_their_first_records(tmp_path: Path) -> None:
    from bench.fixed_costs import first_members, write_skeleton
    from bench.warc_writer import WarcFileWriter

    warcs = tmp_path / "warc"
    warcs.mkdir()
    for name in ("a.warc.gz", "b.warc.gz"):
        with open(warcs / name, "wb") as handle:
            writer = WarcFileWriter(handle, name, f"info-{name}")
            for number in range(4):
                writer.add(f"{name}-{number}", f"https://example.com/{name}/{number}", b"<p>page</p>" * 50)
    assert write_skeleton(warcs, tmp_path / "skeleton") == 2  # one response record per file
    whole = (warcs / "a.warc.gz").read_bytes()
    kept = (tmp_path / "skeleton" / "a.warc.gz").read_bytes()
    assert whole.startswith(kept) and 0 < len(kept) < len(whole)
    assert first_members(whole, 100) == whole
    with pytest.raises(ValueError, match="does not end"):
        first_members(whole[:-10], 100)
