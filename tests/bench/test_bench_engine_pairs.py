"""The paired engine bench: rounds ordered so that a steady drift cancels, overheads per round, their median."""

from __future__ import annotations

import pytest
from bench.engine_pairs import (
    format_table,
    parse_args,
    round_order,
    round_overheads,
    split_cost,
    summarize,
    targets,
)


def test_a_round_places_every_job_at_the_same_mean_position() -> None:
    order = round_order(["ray", "beam"])
    assert order == [
        "bare-split",
        "bare-whole",
        "corpusmill-ray",
        "corpusmill-beam",
        "corpusmill-beam",
        "corpusmill-ray",
        "bare-whole",
        "bare-split",
    ]
    positions: dict[str, list[int]] = {}
    for place, job in enumerate(order):
        positions.setdefault(job, []).append(place)
    assert {sum(places) / len(places) for places in positions.values()} == {3.5}
    assert round_order(["ray"], ("split",)) == [
        "bare-split",
        "corpusmill-ray",
        "corpusmill-ray",
        "bare-split",
    ]


def test_a_steady_drift_cancels_within_a_round_for_either_bare_loop() -> None:
    # The whole-corpus bare loop costs 20 CPU s per document, the split one 4% more, each engine its overhead
    # over the split one; the machine gets 2% slower per job.
    factor = {
        "bare-whole": 1.0,
        "bare-split": 1.04,
        "corpusmill-ray": 1.04 * 1.06,
        "corpusmill-beam": 1.04 * 1.09,
    }
    per_doc: dict[str, list[float]] = {}
    for place, job in enumerate(round_order(["ray", "beam"])):
        per_doc.setdefault(job, []).append(20.0 * factor[job] * (1 + 0.02 * place))
    found = round_overheads(per_doc)
    # Linear drift cancels in the means; what is left is the product term, far below the drift itself.
    assert found["split"]["ray"] == pytest.approx(6.0, abs=0.1)
    assert found["split"]["beam"] == pytest.approx(9.0, abs=0.1)
    assert found["whole"]["beam"] == pytest.approx((1.04 * 1.09 - 1) * 100, abs=0.1)
    assert split_cost(per_doc) == pytest.approx(4.0, abs=0.1)
    assert split_cost({"bare-split": [1.0]}) is None


def test_rounds_are_summarized_by_their_median_and_the_goal_is_checked_on_the_split_bare_loop() -> None:
    rounds = [
        {"split": {"ray": 5.1, "beam": 9.0}, "whole": {"ray": 7.6, "beam": 15.0}},
        {"split": {"ray": 6.0, "beam": 11.0}, "whole": {"ray": 12.5, "beam": 18.3}},
        {"split": {"ray": 6.6, "beam": 8.5}, "whole": {"ray": 8.9, "beam": 16.0}},
    ]
    summary = summarize(rounds)
    assert summary["whole"]["ray"] == {"rounds": [7.6, 12.5, 8.9], "median": 8.9}
    assert summary["split"]["beam"]["median"] == 9.0
    text = format_table(summary, {"split": [20.5, 19.3], "whole": [19.9]}, [3.0, 4.0, 5.5])
    lines = text.splitlines()
    assert lines[0].split() == ["engine", "bare", "loop", "round", "1", "round", "2", "round", "3", "median"]
    assert lines[1].split() == ["ray", "split", "+5.1%", "+6.0%", "+6.6%", "+6.0%"]
    assert lines[4].split() == ["beam", "whole", "+15.0%", "+18.3%", "+16.0%", "+16.0%"]
    assert "bare loop (split) per document: 20.50, 19.30 CPU s" in text
    assert "splitting the input costs the bare loop +3.0%, +4.0%, +5.5% (median +4.0%)" in text
    verdicts = {line.split("  ")[0]: line.split()[-3:] for line in lines if "median (%)" in line}
    assert verdicts == {
        "Ray overhead per document over the split bare loop, median (%)": ["6.0", "10.0", "yes"],
        "Beam overhead per document over the split bare loop, median (%)": ["9.0", "10.0", "yes"],
    }
    # The whole-corpus figures carry no goal: Beam's 16% there fails nothing.
    assert targets(summary) == {"ray": True, "beam": True}
    assert targets({"whole": summary["whole"]}) == {}
    over = summarize([{"split": {"beam": 12.0, "local": 1.0}}])
    assert targets(over) == {"beam": False}


def test_bare_loops_are_named_and_checked() -> None:
    assert parse_args([]).baselines == ("split", "whole")
    assert parse_args(["--bare", "whole"]).baselines == ("whole",)
    with pytest.raises(SystemExit):
        parse_args(["--bare", "halves"])
