"""The service's pieces on their own: path checks, mixture diffs, progress from markers, failure reasons,
cron ticks, tokens, recipe versions. No Ray here."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from corpusmill.service.artifacts import ArtifactMissing, safe_file
from corpusmill.service.db import make_engine
from corpusmill.service.jobs import JobState
from corpusmill.service.mixdiff import NoMixture, mixture_diff
from corpusmill.service.progress import ProgressReader
from corpusmill.service.recipes import register_recipe
from corpusmill.service.runs import failure_reason
from corpusmill.service.scheduler import ScheduleError, check_cron, next_tick
from corpusmill.service.settings import TOKEN_ENV, ServiceSettings, SettingsError, read_api_token
from corpusmill.service.store import Store

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
    for bad in ("* * * *", "0 3 * * * *", "60 * * * *", "@daily", "nonsense"):
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
