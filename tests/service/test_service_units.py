"""The service's pieces on their own: path checks, how files are sent, mixture diffs, progress from markers, failure reasons,
cron ticks, tokens, recipe versions, what an incremental schedule's runs build on. No Ray here."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse
from fastapi.testclient import TestClient
from servicekit import RecordingJobs

from corpusmill.service import artifacts, page_render
from corpusmill.service.artifacts import ArtifactMissing, safe_file
from corpusmill.service.db import make_engine
from corpusmill.service.jobs import JobState
from corpusmill.service.mixdiff import NoMixture, mixture_diff
from corpusmill.service.models import RunOut
from corpusmill.service.progress import ProgressReader
from corpusmill.service.recipes import register_recipe
from corpusmill.service.runs import MAX_LISTED_FILES, RunManager, failure_reason, incremental_summary
from corpusmill.service.scheduler import ScheduleError, Scheduler, check_cron, next_tick
from corpusmill.service.settings import TOKEN_ENV, ServiceSettings, SettingsError, read_api_token
from corpusmill.service.store import FAILED, PENDING, SUCCEEDED, Run, Store

UTC = dt.UTC


def test_safe_file_serves_only_regular_files_inside_the_base(tmp_path: Path) -> None:
    base = tmp_path / "run"
    (base / "shards").mkdir(parents=True)
    (base / "shards" / "a.bin").write_bytes(b"x")
    outside = tmp_path / "secret"
    outside.write_text("s")
    (base / "out").symlink_to(outside)
    (base / "loop").symlink_to(base / "loop")
    (base / "in").symlink_to(base / "shards" / "a.bin")
    assert safe_file(base, "shards/a.bin") == (base / "shards" / "a.bin").resolve()
    assert safe_file(base, "shards/../shards/a.bin") == (base / "shards" / "a.bin").resolve()
    assert safe_file(base, "in") == (base / "shards" / "a.bin").resolve()
    for bad in (
        "../secret",
        "shards/../../secret",
        str(outside),
        "/etc/passwd",
        "out",
        "loop",
        "shards",
        "",
        "a\0b",
    ):
        with pytest.raises(ArtifactMissing):
            safe_file(base, bad)


def _mixture(stage: str, domains: dict[str, tuple[int, float]]) -> dict:
    return {
        "stage": stage,
        "achieved_tokens": sum(t for t, _ in domains.values()),
        "domains": [{"domain": d, "achieved_tokens": t, "share_after": s} for d, (t, s) in domains.items()],
    }


def test_small_files_are_sent_whole_and_ranges_and_big_files_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifacts, "WHOLE_FILE_BYTES", 1000)
    (tmp_path / "small.bin").write_bytes(bytes(range(256)) * 2)
    (tmp_path / "big.bin").write_bytes(b"x" * 5000)
    app = FastAPI()

    @app.get("/f/{name}")
    def get(name: str, request: Request) -> Response:
        path = safe_file(tmp_path, name)
        return artifacts.file_response(path, download=True, ranged="range" in request.headers)

    with TestClient(app) as client:
        small = client.get("/f/small.bin")
        assert small.content == bytes(range(256)) * 2 and small.headers["content-length"] == "512"
        assert small.headers["content-disposition"] == 'attachment; filename="small.bin"'
        assert small.headers["accept-ranges"] == "bytes" and small.headers["etag"]
        part = client.get("/f/small.bin", headers={"Range": "bytes=10-19"})  # streamed, with the range
        assert part.status_code == 206 and part.content == bytes(range(10, 20))
        big = client.get("/f/big.bin")
        assert big.content == b"x" * 5000 and big.headers["content-length"] == "5000"
    assert not isinstance(artifacts.file_response(tmp_path / "small.bin", False), FileResponse)
    assert isinstance(artifacts.file_response(tmp_path / "big.bin", False), FileResponse)


def test_mixture_diff_per_domain() -> None:
    before = {"mixtures": [_mixture("04-mix_v1", {"en": (100, 0.5), "de": (100, 0.5)})]}
    after = {"mixtures": [_mixture("05-mix_v1", {"en": (150, 0.6), "fr": (100, 0.4)})]}
    (section,) = mixture_diff(before, after)
    assert (section["stage_before"], section["stage_after"]) == ("04-mix_v1", "05-mix_v1")
    assert (section["tokens_before"], section["tokens_after"], section["delta_tokens"]) == (200, 250, 50)
    rows = {r["domain"]: r for r in section["domains"]}
    assert [r["domain"] for r in section["domains"]] == ["en", "fr", "de"]
    assert (rows["en"]["delta_tokens"], rows["en"]["delta_share"]) == (50, pytest.approx(0.1))
    assert (rows["fr"]["tokens_before"], rows["fr"]["tokens_after"], rows["fr"]["share_before"]) == (
        0,
        100,
        0.0,
    )
    assert (rows["de"]["tokens_after"], rows["de"]["delta_tokens"], rows["de"]["delta_share"]) == (
        0,
        -100,
        -0.5,
    )
    with pytest.raises(NoMixture, match="second run"):
        mixture_diff(before, {"mixtures": []})


def _marker(path: Path, stats: dict[str, tuple[int, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    counters = {
        label: {"counters": {"docs_in": i, "docs_out": o, "other": 5}} for label, (i, o) in stats.items()
    }
    path.write_text(json.dumps({"part": path.name, "stats": counters}))


def test_progress_sums_the_markers_of_each_step(tmp_path: Path) -> None:
    stages = tmp_path / "stages"
    _marker(stages / "01-a_v1+b_v1" / "part-00000.done.json", {"01-a_v1": (10, 9), "02-b_v1": (9, 7)})
    _marker(stages / "01-a_v1+b_v1" / "part-00001.done.json", {"01-a_v1": (5, 5), "02-b_v1": (5, 1)})
    _marker(stages / "02-c_v1" / "keys" / "part-00000.done.json", {"03-c_v1": (100, 100)})  # an inner round
    _marker(stages / "02-c_v1" / "part-00000.done.json", {"03-c_v1": (8, 6)})
    planned = [{"step": "01-a_v1+b_v1"}, {"step": "02-c_v1"}, {"step": "03-d_v1"}]
    reader = ProgressReader()
    steps = reader.snapshot(tmp_path, planned)["steps"]
    assert [(s["step"], s["state"], s["parts_done"]) for s in steps] == [
        ("01-a_v1+b_v1", "done", 2),
        ("02-c_v1", "started", 1),
        ("03-d_v1", "waiting", 0),
    ]
    assert steps[0]["stages"] == [
        {"label": "01-a_v1", "docs_in": 15, "docs_out": 14},
        {"label": "02-b_v1", "docs_in": 14, "docs_out": 8},
    ]
    assert steps[1]["stages"] == [{"label": "03-c_v1", "docs_in": 8, "docs_out": 6}]
    # A new marker shows up in the next snapshot; a complete run has every started step done.
    _marker(stages / "02-c_v1" / "part-00001.done.json", {"03-c_v1": (2, 2)})
    steps = reader.snapshot(tmp_path, planned, complete=True)["steps"]
    assert steps[1]["stages"][0]["docs_in"] == 10 and steps[1]["state"] == "done"


def test_failure_reason_puts_the_clis_error_first() -> None:
    state = JobState(
        "FAILED", "Job entrypoint command failed with exit code 1, last available logs: ...", None, None, 1
    )
    logs = "Running entrypoint\nsome output\nerror: no input file matches /data/x/*.jsonl\n"
    reason = failure_reason(state, logs)
    assert reason.splitlines()[0] == "error: no input file matches /data/x/*.jsonl"
    assert "Ray job FAILED (exit code 1): Job entrypoint command failed with exit code 1" in reason
    assert "last available logs" not in reason and reason.endswith(
        "error: no input file matches /data/x/*.jsonl"
    )
    crash = failure_reason(
        state, "Traceback (most recent call last):\n  File x\nMemoryError: out of memory\n"
    )
    assert crash.splitlines()[0] == "MemoryError: out of memory"
    assert failure_reason(JobState("FAILED", None, None, None, None), None) == "Ray job FAILED: no message"


def test_cron_ticks_are_utc_and_strictly_after() -> None:
    assert next_tick("0 3 * * *", dt.datetime(2031, 1, 1, 5, 0, tzinfo=UTC)) == dt.datetime(
        2031, 1, 2, 3, tzinfo=UTC
    )
    assert next_tick("0 3 * * *", dt.datetime(2031, 1, 1, 3, 0, tzinfo=UTC)) == dt.datetime(
        2031, 1, 2, 3, tzinfo=UTC
    )
    two_hours_east = dt.timezone(dt.timedelta(hours=2))
    assert next_tick("30 * * * *", dt.datetime(2031, 1, 1, 12, 40, tzinfo=two_hours_east)) == dt.datetime(
        2031, 1, 1, 11, 30, tzinfo=UTC
    )
    assert check_cron("  */5   *  * * * ") == "*/5 * * * *"
    for bad in ("* * * *", "0 3 * * * *", "60 * * * *", "@daily 3", "@reboot", "nonsense"):
        with pytest.raises(ScheduleError):
            check_cron(bad)


def test_the_api_token_comes_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(SettingsError, match=TOKEN_ENV):
        read_api_token()
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert read_api_token().get_secret_value() == "from-env"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert read_api_token(token_file).get_secret_value() == "from-file"
    token_file.write_text("  \n")
    with pytest.raises(SettingsError, match="empty"):
        read_api_token(token_file)
    with pytest.raises(SettingsError, match="cannot read"):
        read_api_token(tmp_path / "missing")
    settings = ServiceSettings(data_dir=tmp_path, api_token="very-secret-value", ray_token="ray-secret-value")
    assert "very-secret-value" not in repr(settings) and "ray-secret-value" not in repr(settings)
    assert settings.database_url() == f"sqlite:///{tmp_path.resolve() / 'service.db'}"
    assert settings.runs_root() == tmp_path.resolve() / "runs"


def test_a_recipe_version_is_its_validated_content(tmp_path: Path) -> None:
    store = Store(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    now = dt.datetime(2031, 1, 1, tzinfo=UTC)
    text = "name: r\ninput: {paths: [/x/*.jsonl]}\nstages: [tokenize]\n"
    first, created = register_recipe(store, text, now)
    assert created and first.version == 1 and first.yaml == text
    # The same recipe written differently (defaults spelled out, flow vs block style) is the same version.
    spelled_out = (
        "name: r\nseed: 0\ninput:\n  paths: ['/x/*.jsonl']\n  format: auto\nstages:\n  - stage: tokenize\n"
    )
    again, created = register_recipe(store, spelled_out, now)
    assert not created and again.id == first.id
    second, created = register_recipe(store, text.replace("[tokenize]", "[dedup_exact, tokenize]"), now)
    assert created and second.version == 2
    reverted, created = register_recipe(store, text, now)  # back to the first body: newest version again
    assert created and reverted.version == 3 and reverted.digest == first.digest
    assert [v.version for v in store.recipe_versions("r")] == [1, 2, 3]


def _incremental_service(tmp_path: Path) -> tuple[Store, RunManager, Scheduler, RecordingJobs]:
    store = Store(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    jobs = RecordingJobs()
    clock = lambda: dt.datetime(2031, 1, 1, tzinfo=UTC)  # noqa: E731
    manager = RunManager(store, jobs, tmp_path / "runs", "python", clock)  # type: ignore[arg-type]
    return store, manager, Scheduler(store, manager, clock), jobs


def _finish(store: Store, run: Run, status: str = SUCCEEDED) -> None:
    """The run's job ended: a succeeded run has its manifest.json (what marks a run directory as complete)
    and its parts.json (what a base needs)."""
    if status == SUCCEEDED:
        for name in ("manifest.json", "parts.json"):
            (Path(run.run_dir) / name).write_text("{}")
    assert store.update_run(run.id, status=status)


def test_an_incremental_schedule_builds_on_its_last_successful_run(tmp_path: Path) -> None:
    store, _, scheduler, jobs = _incremental_service(tmp_path)
    text = "name: grow\ninput: {paths: [/x/*.jsonl]}\nstages: [tokenize]\n"
    register_recipe(store, text, dt.datetime(2031, 1, 1, tzinfo=UTC))
    schedule = scheduler.add("grow", None, "0 * * * *", incremental=True)
    plain = scheduler.add("grow", None, "0 * * * *")
    assert schedule.incremental and not plain.incremental
    hour = dt.timedelta(hours=1)
    tick = schedule.next_run_at

    def fire() -> Run:
        nonlocal tick
        runs = {r.schedule_id: r for r in scheduler.tick(tick + dt.timedelta(seconds=5))}
        tick += hour
        assert runs[plain.id].base_run_id is None and runs[plain.id].base_note is None
        assert "--base" not in jobs.entrypoints[runs[plain.id].ray_job_id]
        _finish(store, runs[plain.id])  # ended before the next tick, which would skip it otherwise
        return runs[schedule.id]

    first = fire()  # nothing to build on yet
    assert first.base_run_id is None and "no successful run" in first.base_note
    assert "--base" not in jobs.entrypoints[first.ray_job_id]
    _finish(store, first)

    second = fire()
    assert second.base_run_id == first.id and second.base_note is None
    assert f"--base {first.run_dir} " in jobs.entrypoints[second.ray_job_id]
    _finish(store, second, FAILED)

    # The last run failed on run 1: this one is a full build, whatever the failure was.
    third = fire()
    assert third.base_run_id is None and f"failed building on run {first.id}" in third.base_note
    _finish(store, third)

    fourth = fire()  # builds on the newest successful run
    assert (
        fourth.base_run_id == third.id and f"--base {third.run_dir} " in jobs.entrypoints[fourth.ray_job_id]
    )
    _finish(store, fourth)

    # The base's directory is gone: a full build, saying so; the schedule goes on.
    shutil.rmtree(fourth.run_dir)
    fifth = fire()
    assert fifth.base_run_id is None and fifth.status == PENDING
    assert fifth.base_note == f"full build: the directory of run {fourth.id} ({fourth.run_dir}) is gone"
    assert "--base" not in jobs.entrypoints[fifth.ray_job_id]
    _finish(store, fifth)

    # A run made before runs recorded their parts cannot be a base.
    (Path(fifth.run_dir) / "parts.json").unlink()
    before = fire()
    assert before.base_run_id is None and "did not record its parts (parts.json)" in before.base_note
    _finish(store, before)

    # A new version of the recipe with another fingerprint does not build on runs of the old one.
    register_recipe(
        store, text.replace("[tokenize]", "[dedup_exact, tokenize]"), dt.datetime(2031, 1, 2, tzinfo=UTC)
    )
    sixth = fire()
    assert sixth.version == 2 and sixth.base_run_id is None and "fingerprint differs" in sixth.base_note
    _finish(store, sixth)
    seventh = fire()
    assert seventh.base_run_id == sixth.id
    _finish(store, seventh)

    # Switched off: full builds again.
    scheduler.change(store.schedule(schedule.id), incremental=False)
    off = fire()
    assert off.base_run_id is None and off.base_note is None


def test_a_base_gone_before_submitting_makes_a_full_build(tmp_path: Path) -> None:
    store, manager, scheduler, jobs = _incremental_service(tmp_path)
    recipe, _ = register_recipe(
        store, "name: r\ninput: {paths: [/x/*.jsonl]}\nstages: [tokenize]\n", manager.clock()
    )
    base = manager.trigger(recipe)
    _finish(store, base)
    schedule = scheduler.add("r", None, "0 * * * *", incremental=True)
    # The tick's run is created with its base; the base vanishes before the job is (re)submitted.
    run = store.fire_schedule(
        schedule, schedule.next_run_at, recipe, manager.clock(), manager.place("r"), base_run_id=base.id
    )
    shutil.rmtree(base.run_dir)
    submitted = manager.submit(run)
    assert submitted.status == PENDING and submitted.base_run_id is None
    assert submitted.base_note == f"full build: the directory of run {base.id} ({base.run_dir}) is gone"
    assert "--base" not in jobs.entrypoints[run.ray_job_id]


def test_a_finished_run_keeps_its_incremental_summary(tmp_path: Path) -> None:
    store, manager, _, _ = _incremental_service(tmp_path)
    recipe, _ = register_recipe(
        store, "name: r\ninput: {paths: [/x/*.jsonl]}\nstages: [tokenize]\n", manager.clock()
    )
    run = manager.trigger(recipe)
    run_dir = Path(run.run_dir)
    added = [f"2031/day-{i:04d}.jsonl" for i in range(MAX_LISTED_FILES + 5)]
    section = {
        "base": "/runs/r/run-000001",
        "base_fingerprint": "abc",
        "added_files": added,
        "removed_files": ["old.jsonl"],
        "parts": 300,
        "reused_parts": 90,
        "taken_down": 0,
    }
    (run_dir / "stats.json").write_text(json.dumps({"incremental": section, "stages": []}))
    (run_dir / "manifest.json").write_text("{}")
    manager._apply(store.run(run.id), JobState("SUCCEEDED", None, None, None, 0))
    summary = store.run(run.id).incremental
    assert summary == {
        "base": "/runs/r/run-000001",
        "parts": 300,
        "reused_parts": 90,
        "taken_down": 0,
        "added_files": added[:MAX_LISTED_FILES],
        "added_count": len(added),
        "removed_files": ["old.jsonl"],
        "removed_count": 1,
    }
    out = RunOut.of(store.run(run.id))
    assert out.incremental is not None and out.incremental.added_count == len(added)
    assert out.base_run_id is None and out.base_note is None
    # A full build's stats.json says null; a run without stats.json has nothing to say.
    (run_dir / "stats.json").write_text(json.dumps({"incremental": None}))
    assert incremental_summary(run_dir) is None
    assert incremental_summary(tmp_path / "nowhere") is None


def test_every_page_template_is_compiled_at_start() -> None:
    templates = Path(page_render.__file__).with_name("templates")
    assert page_render.compile_templates() == len(list(templates.glob("*.html")))
    for path in templates.glob("*.html"):  # cached: a page's first visitor does not wait for its compile
        assert page_render.env.cache is not None
        assert any(key[1] == path.name for key in page_render.env.cache), path.name
