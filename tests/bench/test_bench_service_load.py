"""The service load bench: its statistics, and a few seconds of real load on a service with a run in flight."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.service_load import KINDS, Sample, Targets, format_table, main, percentile, stats


def test_percentiles_are_latencies_some_request_had() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (50, 90, 99, 100)] == [50.0, 90.0, 99.0, 100.0]
    assert percentile([7.0], 99) == 7.0 and percentile([], 50) == 0.0
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0


def test_stats_count_errors_by_cause() -> None:
    samples = [Sample("api runs", 0.010, None), Sample("api runs", 0.030, "HTTP 500")]
    samples += [Sample("api runs", 0.020, "ReadTimeout")]
    row = stats(samples, window_s=2.0)
    assert row["requests"] == 3 and row["errors"] == 2 and row["error_rate"] == pytest.approx(2 / 3)
    assert row["errors_by_cause"] == {"HTTP 500": 1, "ReadTimeout": 1}
    assert (row["p50_ms"], row["max_ms"]) == pytest.approx((20.0, 30.0))
    assert row["requests_per_s"] == 1.5


def test_every_kind_has_a_path_and_runs_alternate() -> None:
    targets = Targets(finished_id=1, in_flight_id=2, artifact="shards/x.bin", artifact_bytes=10)
    assert {kind: targets.path(kind, 0) for kind in KINDS} == {
        "runs page": "/runs",
        "run page": "/runs/1",
        "api runs": "/api/runs",
        "api run": "/api/runs/1",
        "report page": "/runs/1/report/",
        "artifact": "/api/runs/1/artifacts/shards/x.bin",
        "api schedules": "/api/schedules",
        "recipes page": "/recipes",
    }
    assert targets.path("run page", 1) == "/runs/2" and targets.path("api run", 1) == "/api/runs/2"


@pytest.mark.ray
def test_quick_load_on_a_real_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "load.json"
    # A generous goal: this checks that the bench measures, not how fast this machine is while it tests.
    code = main(["--quick", "--p99-goal-ms", "30000", "--json", str(out)])
    result = json.loads(out.read_text(encoding="utf-8"))
    overall, endpoints = result["overall"], result["endpoints"]
    assert overall["errors"] == 0, format_table(result)
    assert code == 0 and result["goal_met"]
    assert (result["clients"], result["seconds"]) == (5, 3.0) and result["window_s"] >= 3.0
    assert set(endpoints) == set(KINDS)
    assert all(row["requests"] > 0 for row in endpoints.values()), endpoints
    assert sum(row["requests"] for row in endpoints.values()) == overall["requests"]
    assert sum(row["errors"] for row in endpoints.values()) == overall["errors"]
    assert overall["requests_per_s"] == pytest.approx(overall["requests"] / result["window_s"])
    assert sum(second["requests"] for second in result["timeline"]) == overall["requests"]
    assert max(second["max_ms"] for second in result["timeline"]) == overall["max_ms"]
    for row in (*endpoints.values(), overall):
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert result["in_flight"]["whole_window"] and result["in_flight"]["samples"] >= 3
    assert result["targets"]["artifact_bytes"] > 0
    printed = capsys.readouterr().out
    assert "slowest second: " in printed
    assert printed.splitlines()[0].split()[:3] == ["endpoint", "requests", "errors"]
    assert (
        "run in flight: the whole window" in printed and "goal: no error and p99 <= 30000 ms: met" in printed
    )
