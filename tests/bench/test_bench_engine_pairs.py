"""The paired engine bench: rounds ordered so that a steady drift cancels, overheads per round, their median."""

from __future__ import annotations

import pytest
from bench.engine_pairs import format_table, round_order, round_overheads, summarize, targets


def test_a_round_places_every_job_at_the_same_mean_position() -> None:
    order = round_order(["ray", "beam"])
    assert order == [
        "corpusmill-bare",
        "corpusmill-ray",
        "corpusmill-beam",
        "corpusmill-beam",
        "corpusmill-ray",
        "corpusmill-bare",
    ]
    positions: dict[str, list[int]] = {}
    for place, job in enumerate(order):
        positions.setdefault(job, []).append(place)
    assert {sum(places) / len(places) for places in positions.values()} == {2.5}


def test_a_steady_drift_cancels_within_a_round() -> None:
    # Every job costs 20 CPU s per document plus its overhead, and the machine gets 2% slower per job.
    overhead = {"corpusmill-bare": 0.0, "corpusmill-ray": 0.08, "corpusmill-beam": 0.15}
    per_doc: dict[str, list[float]] = {}
    for place, job in enumerate(round_order(["ray", "beam"])):
        per_doc.setdefault(job, []).append(20.0 * (1 + overhead[job]) * (1 + 0.02 * place))
    found = round_overheads(per_doc)
    # Linear drift cancels in the means; what is left is the product term, far below the drift itself.
    assert found["ray"] == pytest.approx(8.0, abs=0.1) and found["beam"] == pytest.approx(15.0, abs=0.1)


def test_rounds_are_summarized_by_their_median_and_printed() -> None:
    rounds = [{"ray": 7.6, "beam": 15.0}, {"ray": 12.5, "beam": 18.3}, {"ray": 8.9, "beam": 16.0}]
    summary = summarize(rounds)
    assert summary["ray"] == {"rounds": [7.6, 12.5, 8.9], "median": 8.9}
    assert summary["beam"]["median"] == 16.0
    text = format_table(summary, [20.5, 19.3])
    assert text.splitlines()[0].split() == ["engine", "round", "1", "round", "2", "round", "3", "median"]
    assert text.splitlines()[1].split() == ["ray", "+7.6%", "+12.5%", "+8.9%", "+8.9%"]
    assert "20.50, 19.30 CPU s" in text
    assert "Ray overhead per document, median (%)          8.9    10.0  yes" in text
    assert "Beam overhead per document, median (%)        16.0    10.0  NO" in text
    assert targets({**summary, "local": {"rounds": [1.0], "median": 1.0}}) == {"ray": True, "beam": False}
