"""The run page's step durations: from the runner's `timings.json` (summed over the passes of a resumed run,
counting up while a step is in flight, read from object storage too), and from the part markers' times for
a run directory made before that file existed."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servicekit import RecordingJobs, pages_app

from corpusmill.pipelines.timings import TIMINGS_FILE
from corpusmill.service.recipes import register_recipe
from corpusmill.service.run_view import run_view, steps_of
from corpusmill.service.store import FAILED, RUNNING, SUCCEEDED, Run
from s3kit import Bucket

UTC = dt.UTC
NOW = dt.datetime(2031, 1, 1, 12, tzinfo=UTC)
STARTED = NOW - dt.timedelta(minutes=10)
RECIPE = "name: r\ninput: {paths: [/x/*.jsonl]}\nstages: [dedup_exact, tokenize]\n"


class Pages:
    """The pages over a real store, with a fake Jobs API and a fixed clock."""

    def __init__(self, tmp_path: Path) -> None:
        built = pages_app(tmp_path, RecordingJobs(), NOW)
        self.store, self.manager = built.store, built.manager
        self.client = TestClient(built.app, follow_redirects=False)
        register_recipe(self.store, RECIPE, NOW)

    def run(self, status: str, steps: list[str], files: dict[str, Any], run_dir: str | None = None) -> Run:
        run = self.manager.trigger(self.store.recipe("r"))
        directory = run_dir or run.run_dir
        for name, content in files.items():
            path = Path(directory) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content))
        progress = {"steps": [{"step": s, "state": "done", "parts_done": 2, "stages": []} for s in steps]}
        self.store.update_run(
            run.id,
            status=status,
            run_dir=directory,
            started_at=STARTED,
            finished_at=None if status == RUNNING else NOW,
            progress=progress,
        )
        return self.store.run(run.id)


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[Pages]:
    p = Pages(tmp_path)
    with p.client:
        yield p


def _at(minutes: float) -> str:
    return (STARTED + dt.timedelta(minutes=minutes)).isoformat(timespec="milliseconds")


def _step(name: str, start: float, end: float | None, seconds: float | None = None, **more: Any) -> dict:
    entry = {"step": name, "kind": "map", "stages": [], "state": "done" if end is not None else "running"}
    entry.update(started_at=_at(start), finished_at=_at(end) if end is not None else None)
    entry.update(seconds=seconds if seconds is not None or end is None else (end - start) * 60)
    entry.update({"parts": 2, "parts_run": 2, "parts_reused": 0, **more})
    return entry


def _timings(*passes: list[dict]) -> dict:
    return {
        "format": "corpusmill-timings",
        "format_version": 1,
        "passes": [{"pass": n, "steps": steps} for n, steps in enumerate(passes, start=1)],
    }


def _cell(page: str, step: str) -> str:
    """The step's duration cell."""
    row = page[page.index(f'<tr data-step="{step}"') :]
    start = row.index('class="num took"')
    return row[start : row.index("</td>", start)]


def test_durations_come_from_the_timings_file(pages: Pages) -> None:
    timings = _timings([_step("01-dedup_exact_v1", 0.5, 1.5, seconds=59.9), _step("02-tokenize_v1", 2, 4)])
    run = pages.run(SUCCEEDED, ["01-dedup_exact_v1", "02-tokenize_v1"], {TIMINGS_FILE: timings})
    steps = {s["step"]: s for s in run_view(pages.store, run, NOW).steps}
    first = steps["01-dedup_exact_v1"]
    assert first["seconds"] == 59.9  # the monotonic seconds, not the wall clock's difference
    assert first["started_at"] == STARTED + dt.timedelta(seconds=30) and not first["running"]
    assert steps["02-tokenize_v1"]["seconds"] == 120
    page = pages.client.get(f"/runs/{run.id}").text
    cell = _cell(page, "02-tokenize_v1")
    assert 'data-seconds="120.000"' in cell and ">2 min 00 s" in cell
    assert "started 2031-01-01 11:52:00 UTC; finished 2031-01-01 11:54:00 UTC" in cell


def test_a_step_in_flight_counts_up_to_now(pages: Pages) -> None:
    timings = _timings([_step("01-dedup_exact_v1", 0, 1), _step("02-tokenize_v1", 7, None)])
    run = pages.run(RUNNING, ["01-dedup_exact_v1", "02-tokenize_v1"], {TIMINGS_FILE: timings})
    cell = _cell(pages.client.get(f"/runs/{run.id}").text, "02-tokenize_v1")
    assert ">3 min 00 s so far" in cell and "running" in cell


def test_a_resumed_run_sums_its_passes(pages: Pages) -> None:
    killed = [_step("01-dedup_exact_v1", 0, 2), _step("02-tokenize_v1", 2, None)]
    resumed = [
        _step("01-dedup_exact_v1", 5, 5.01, seconds=0.5, parts_run=0, parts_reused=2, state="reused"),
        _step("02-tokenize_v1", 5.01, 6, seconds=59.0, parts_run=1, parts_reused=1),
    ]
    run = pages.run(
        SUCCEEDED, ["01-dedup_exact_v1", "02-tokenize_v1"], {TIMINGS_FILE: _timings(killed, resumed)}
    )
    steps = {s["step"]: s for s in run_view(pages.store, run, NOW).steps}
    first, second = steps["01-dedup_exact_v1"], steps["02-tokenize_v1"]
    assert first["seconds"] == 120.5 and first["started_at"] == STARTED
    assert first["finished_at"] == STARTED + dt.timedelta(minutes=5.01)
    assert "over 2 passes" in first["took"] and "2 of 2 parts found finished" in first["took"]
    # When the killed pass died is unknown: only the pass that finished the step counts, and the title says so.
    assert second["seconds"] == 59.0 and "pass 1 stopped in it" in second["took"]


def test_a_failed_run_counts_its_unfinished_step_to_the_run_s_end(pages: Pages) -> None:
    timings = _timings([_step("01-dedup_exact_v1", 0, 1), _step("02-tokenize_v1", 8, None)])
    run = pages.run(FAILED, ["01-dedup_exact_v1", "02-tokenize_v1"], {TIMINGS_FILE: timings})
    steps, _ = steps_of(run, 2, json.loads((Path(run.run_dir) / TIMINGS_FILE).read_text()), NOW)
    assert steps[1]["seconds"] == 120 and "counted to the run's end" in steps[1]["took"]


def test_without_timings_the_markers_times_are_used(pages: Pages) -> None:
    run = pages.run(SUCCEEDED, ["01-dedup_exact_v1", "02-tokenize_v1"], {})
    for step, minutes in (("01-dedup_exact_v1", 1), ("02-tokenize_v1", 4)):
        marker = Path(run.run_dir) / "stages" / step / "part-00000.done.json"
        marker.parent.mkdir(parents=True)
        marker.write_text("{}")
        at = (STARTED + dt.timedelta(minutes=minutes)).timestamp()
        os.utime(marker, (at, at))
    steps = {s["step"]: s for s in run_view(pages.store, run, NOW).steps}
    assert steps["01-dedup_exact_v1"]["seconds"] == 60 and steps["02-tokenize_v1"]["seconds"] == 180
    cell = _cell(pages.client.get(f"/runs/{run.id}").text, "02-tokenize_v1")
    assert ">3 min 00 s" in cell and "markers" in cell


def test_timings_on_object_storage_are_read_too(pages: Pages, s3_bucket: Bucket) -> None:
    uri = s3_bucket.uri("runs/timed")
    timings = _timings([_step("01-dedup_exact_v1", 0, 1.5)])
    s3_bucket.fs.pipe(f"{s3_bucket.name}/runs/timed/{TIMINGS_FILE}", json.dumps(timings).encode())
    run = pages.run(SUCCEEDED, ["01-dedup_exact_v1"], {}, run_dir=uri)
    (step,) = run_view(pages.store, run, NOW).steps
    assert step["seconds"] == 90 and step["finished_at"] == STARTED + dt.timedelta(minutes=1.5)
