"""`python -m bench.trafilatura_xpaths` checks the XPath equivalents on real pages and fails when they differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import trafilatura_xpaths as bench
from corpusmill.filters import trafilatura_xpaths


@pytest.fixture(autouse=True)
def _stock_afterwards():
    yield
    trafilatura_xpaths.uninstall()


def test_reports_no_difference_and_the_cpu_of_both(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    assert bench.main(["--data", str(shared_data), "--pages", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["trees"] == 6 and result["selection_differences"] == 0
    assert [row["options"] for row in result["rows"]] == list(bench.OPTION_SETS)
    assert all(row["differing"] == 0 and row["stock_cpu_seconds"] > 0 for row in result["rows"])
    assert "| stage defaults | 2 |" in capsys.readouterr().out


def test_a_wrong_equivalent_fails_the_run(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trafilatura_xpaths.FastXPath, "__call__", lambda self, tree: [])
    assert bench.main(["--data", str(shared_data), "--pages", "1"]) == 1
