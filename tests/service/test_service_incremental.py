"""An incremental schedule on a real Ray head: each tick builds on the schedule's last successful run, reading
only the input files that appeared since, and the run's API output and page say so."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from servicekit import FakeClock, ServiceHandle, finished

pytestmark = pytest.mark.ray

UTC = dt.UTC


def _write_inputs(directory: Path, *names: str) -> None:
    """Small JSONL files, three documents each, every document distinct."""
    for name in names:
        lines = [
            json.dumps(
                {
                    "text": f"{name} document {i}: words about {name} number {i}.",
                    "url": f"https://x/{name}/{i}",
                }
            )
            for i in range(3)
        ]
        (directory / name).write_text("\n".join(lines) + "\n")


def _document_ids(run_dir: Path) -> set[str]:
    return {
        row["id"]
        for path in (run_dir / "documents").glob("*.parquet")
        for row in pq.read_table(path, columns=["id"]).to_pylist()
    }


def _fired(service: ServiceHandle, schedule_id: int, count: int) -> dict:
    """The schedule's newest run, once it has `count` runs."""
    deadline = time.monotonic() + 60
    while True:
        runs = [
            r
            for r in service.get("/api/runs", params={"recipe": "growing"}).json()
            if r["schedule_id"] == schedule_id
        ]
        if len(runs) >= count:
            assert len(runs) == count, runs
            return runs[0]
        assert time.monotonic() < deadline, f"schedule {schedule_id} has {len(runs)} runs, not {count}"
        time.sleep(0.2)


def test_an_incremental_schedule_builds_each_run_on_the_last(
    service: ServiceHandle, clock: FakeClock, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    _write_inputs(inputs, "a.jsonl", "b.jsonl")
    recipe = {
        "name": "growing",
        # Tiny parts: every file is a part of its own, so a new file leaves the old parts as they were.
        "input": {"paths": [str(inputs / "*.jsonl")], "format": "jsonl", "part_bytes": 64},
        "stages": [{"stage": "dedup_exact"}, {"stage": "tokenize"}, {"stage": "write_shards"}],
    }
    assert service.post("/api/recipes", json={"yaml": yaml.safe_dump(recipe)}).status_code in (200, 201)
    clock.set(dt.datetime(2032, 3, 1, 9, 0, 30, tzinfo=UTC))
    schedule_id = None
    try:
        created = service.post(
            "/api/schedules", json={"recipe": "growing", "cron": "0 * * * *", "incremental": True}
        )
        assert created.status_code == 201 and created.json()["incremental"] is True, created.text
        schedule_id = created.json()["id"]

        # First tick: nothing to build on, a full build.
        clock.set(dt.datetime(2032, 3, 1, 10, 0, 5, tzinfo=UTC))
        first = service.wait_for_run(_fired(service, schedule_id, 1)["id"], finished)
        assert first["status"] == "SUCCEEDED", first["error"]
        assert first["base_run_id"] is None and "no successful run" in first["base_note"]
        first_dir = Path(first["run_dir"])
        assert json.loads((first_dir / "run.json").read_text())["base"] is None
        assert first["incremental"] is None

        # Two new files, then the next tick: it builds on the first run and reads only the new files.
        _write_inputs(inputs, "c.jsonl", "d.jsonl")
        clock.set(dt.datetime(2032, 3, 1, 11, 0, 5, tzinfo=UTC))
        second = service.wait_for_run(_fired(service, schedule_id, 2)["id"], finished)
        assert second["status"] == "SUCCEEDED", second["error"]
        assert second["base_run_id"] == first["id"] and second["base_note"] is None
        second_dir = Path(second["run_dir"])
        assert json.loads((second_dir / "run.json").read_text())["base"] == str(first_dir)
        section = json.loads((second_dir / "stats.json").read_text())["incremental"]
        assert section["base"] == str(first_dir)
        assert sorted(section["added_files"]) == ["c.jsonl", "d.jsonl"] and section["removed_files"] == []
        assert (section["parts"], section["reused_parts"]) == (4, 2)
        assert second["incremental"] == {
            "base": str(first_dir),
            "added_files": ["c.jsonl", "d.jsonl"],
            "added_count": 2,
            "removed_files": [],
            "removed_count": 0,
            "parts": 4,
            "reused_parts": 2,
            "taken_down": 0,
        }
        # Its documents are the old files' and the new files'.
        assert _document_ids(first_dir) == {f"{n}.jsonl:{i}" for n in "ab" for i in (1, 2, 3)}
        assert _document_ids(second_dir) == {f"{n}.jsonl:{i}" for n in "abcd" for i in (1, 2, 3)}

        page = service.get(f"/runs/{second['id']}").text
        assert f'<a id="base-link" href="/runs/{first["id"]}">run #{first["id"]}</a>' in page
        assert '<dd id="added-count">2</dd>' in page
        assert "<code>c.jsonl</code>" in page and "<code>d.jsonl</code>" in page
        assert '<span id="reused-parts">2</span> of <span id="parts">4</span>' in page
        assert "full build" in service.get(f"/runs/{first['id']}").text
    finally:
        clock.release()
        if schedule_id is not None:
            service.request("DELETE", f"/api/schedules/{schedule_id}")
