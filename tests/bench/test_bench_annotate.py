"""The annotate bench: its rows, its table, and waste where the client outruns a one-slot server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.annotate import AUTO, COLUMNS, OLD_CONCURRENCY, Setting, main, parse_settings


def test_settings_parse_with_their_own_timeouts() -> None:
    assert parse_settings("1, auto,8@2.5,old", timeout=120, old_timeout=3.6) == [
        Setting("1", 1, 120),
        Setting(AUTO, None, 120),
        Setting("8@2.5", 8, 2.5),
        Setting(f"{OLD_CONCURRENCY} (old)", OLD_CONCURRENCY, 3.6),
    ]
    for bad in ("0", "x", "4@", ""):
        with pytest.raises(ValueError):
            parse_settings(bad, timeout=1, old_timeout=1)


def test_a_client_ahead_of_the_server_wastes_generations_and_one_at_a_time_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "annotate.json"
    argv = [
        "--docs",
        "4",
        "--delay-s",
        "0.05",
        "--capacity",
        "1",
        "--concurrency",
        "1,4@0.08",
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    one, ahead = report["rows"]
    assert set(COLUMNS) <= set(one) and set(COLUMNS) <= set(ahead)
    assert one["documents"] == 4 and one["wasted"] == one["repeated"] == one["timeouts"] == 0
    assert one["generations"] == 4 and one["peak_running"] == 1
    assert ahead["wasted"] > 0 and ahead["repeated"] > 0 and ahead["generations"] > 4
    assert ahead["peak_running"] == 1  # the server held its one slot: the waste is time, not parallelism
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.startswith("setting"))
    for title in ("timeout s", "documents", "seconds", "docs/s", "timeouts", "wasted", "repeated"):
        assert title in header
    assert "peak running" in header and "settled" in header
