"""The metrics log survives a crash mid-line: the torn record is dropped, complete ones are kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpusmill.training.metrics import append_metrics, read_metrics, truncate_metrics


def test_a_torn_last_line_is_dropped_and_the_log_cut_back(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    for step in (1, 2, 3):
        append_metrics(log, {"step": step, "loss": 10.0 - step})
    with open(log, "a", encoding="utf-8") as handle:
        handle.write('{"loss": 6.5, "st')  # the process died while writing step 4
    assert [r["step"] for r in read_metrics(log)] == [1, 2, 3]
    truncate_metrics(log, 2)
    assert log.read_text().splitlines() == [
        json.dumps({"loss": 10.0 - s, "step": s}, sort_keys=True) for s in (1, 2)
    ]


def test_a_corrupt_complete_line_is_still_an_error(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match=":2: not a JSON line"):
        read_metrics(log)
