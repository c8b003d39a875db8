"""The extractors bench scores and times each extractor on a few real WCXB pages and prints its table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.extractors import main, measure, spread

from corpusmill.filters.extract import RESILIPARSE_OPTIONS


def test_spread_takes_evenly_spaced_items() -> None:
    assert spread(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert spread(list(range(3)), None) == [0, 1, 2] == spread(list(range(3)), 7)


def test_a_few_pages_are_scored_and_timed_for_every_extractor(shared_data: Path) -> None:
    result = measure(shared_data / "wcxb-dev", pages=6)
    rows = {row["extractor"]: row for row in result["extractors"]}
    assert list(rows) == ["trafilatura", "resiliparse", "resiliparse, whole page"]
    assert rows["resiliparse"]["options"] == RESILIPARSE_OPTIONS
    assert rows["resiliparse, whole page"]["options"]["main_content"] is False
    for row in rows.values():
        assert row["pages"] == 6 and 0 <= row["no_text"] <= 6 and row["failures"] == 0
        assert 0.3 < row["f1"] <= 1 and row["cpu_seconds"] > 0 and row["pages_per_core_second"] > 0
    # The whole page's text keeps more than the main text, and so is less precise.
    assert rows["resiliparse, whole page"]["precision"] < rows["resiliparse"]["precision"]


def test_the_command_prints_the_table_and_writes_json(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "extractors.json"
    assert main(["--data", str(shared_data / "wcxb-dev"), "--pages", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("3 WCXB dev pages with ground truth")
    assert "| extractor | pages | precision | recall | F1 | pages per core-second | no text |" in printed
    assert "| resiliparse | 3 |" in printed
    assert json.loads(out.read_text())["pages"] == 3
