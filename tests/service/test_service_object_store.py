"""The service with its runs root on object storage (moto's S3 server on loopback, `tests/s3kit.py`).

Run directories are prefixes on the bucket: the submitted recipe is put there, the job writes there
(`--output s3://...`), and progress, artifacts, report pages and mixture diffs are read from there, never
through a local path (a URI wrapped in `Path` would turn `s3://b/x` into a local `s3:/b/x`). The helpers are
checked on their own first; then a run goes end to end through a real Ray head and the HTTP API.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import s3fs
import yaml
from servicekit import TOKEN, FakeClock, RecordingJobs, ServiceHandle, finished
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient
from typer.testing import CliRunner
from upath import UPath

from corpusmill.cli import app
from corpusmill.core.location import run_path
from corpusmill.service.artifacts import (
    STREAM_CHUNK,
    ArtifactMissing,
    artifact_list,
    file_response,
    read_manifest,
    read_mixture,
    run_location,
    safe_file,
)
from corpusmill.service.db import make_engine
from corpusmill.service.jobs import JobState
from corpusmill.service.progress import ProgressReader
from corpusmill.service.ray_head import LocalRayHead
from corpusmill.service.recipes import register_recipe
from corpusmill.service.runs import RECIPE_FILE, RunManager, incremental_summary
from corpusmill.service.scheduler import Scheduler
from corpusmill.service.settings import ServiceSettings
from corpusmill.service.store import FAILED, SUCCEEDED, Store
from s3kit import Bucket

UTC = dt.UTC


def _no_local_s3_dirs(*roots: Path) -> None:
    """Nothing was written to a local directory named `s3:` (what `Path("s3://b/x")` would make, relative to
    the working directory): not in the working directory, nor anywhere under `roots`."""
    assert not (Path.cwd() / "s3:").exists()
    for root in roots:
        assert not list(root.rglob("s3:*")), root


def _marker(counts: dict[str, tuple[int, int]]) -> bytes:
    stats = {label: {"counters": {"docs_in": i, "docs_out": o}} for label, (i, o) in counts.items()}
    return json.dumps({"stats": stats}).encode()


def test_settings_keep_a_uri_runs_root_as_a_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ServiceSettings(data_dir=tmp_path, api_token="t", runs_dir="s3://bucket/runs/")
    assert settings.runs_dir == "s3://bucket/runs"
    root = settings.runs_root()
    assert isinstance(root, UPath) and str(root) == "s3://bucket/runs"
    assert str(root / "demo" / "run-000001") == "s3://bucket/runs/demo/run-000001"
    monkeypatch.chdir(tmp_path)
    local = ServiceSettings(data_dir=tmp_path, api_token="t", runs_dir="elsewhere/runs")
    assert local.runs_root() == tmp_path.resolve() / "elsewhere" / "runs"
    file_uri = ServiceSettings(data_dir=tmp_path, api_token="t", runs_dir=f"file://{tmp_path}/runs")
    assert file_uri.runs_root() == tmp_path.resolve() / "runs"
    assert (
        ServiceSettings(data_dir=tmp_path, api_token="t", runs_dir=tmp_path / "r").runs_root()
        == tmp_path / "r"
    )


def test_a_run_directory_on_s3_is_read_where_it_lies(s3_bucket: Bucket, tmp_path: Path) -> None:
    uri = s3_bucket.uri("units/read/run-000001")
    run_dir = run_path(uri)
    shard = bytes(range(256)) * (2 * STREAM_CHUNK // 256 + 123)  # three ranged reads
    objects = {
        "stages/01-dedup_exact_v1/part-00000.done.json": _marker({"01-dedup_exact": (10, 8)}),
        "stages/01-dedup_exact_v1/part-00000.parquet": b"p",
        "stages/01-dedup_exact_v1/components-00/bucket-00000.done.json": _marker({"x": (99, 99)}),
        "stages/02-tokenize_v1/part-00000.done.json": _marker({"02-tokenize": (8, 8)}),
        "shards/shard-00000-00000.bin": shard,
        "report/index.html": b"<html>report</html>",
        "report/mixture.json": json.dumps({"mixtures": [{"stage": "03-mix_v2", "domains": []}]}).encode(),
        "stats.json": json.dumps({"incremental": {"base": "s3://b/x", "added_files": ["a.jsonl"]}}).encode(),
    }
    for key, data in objects.items():
        (run_dir / key).write_bytes(data)
    sibling = run_path(s3_bucket.uri("units/read/run-0000010"))
    (sibling / "secret.txt").write_bytes(b"not yours")

    # Progress: the markers of each step folder (not those of its internal rounds), fresh on every snapshot.
    reader = ProgressReader()
    planned = [
        {"step": s, "stages": []} for s in ("01-dedup_exact_v1", "02-tokenize_v1", "03-write_shards_v3")
    ]
    steps = reader.snapshot(uri, planned)["steps"]
    assert [(s["step"], s["state"], s["parts_done"]) for s in steps] == [
        ("01-dedup_exact_v1", "done", 1),
        ("02-tokenize_v1", "started", 1),
        ("03-write_shards_v3", "waiting", 0),
    ]
    assert steps[0]["stages"] == [{"label": "01-dedup_exact", "docs_in": 10, "docs_out": 8}]
    (run_dir / "stages/02-tokenize_v1/part-00001.done.json").write_bytes(_marker({"02-tokenize": (5, 4)}))
    steps = reader.snapshot(uri, planned)["steps"]
    assert steps[1]["parts_done"] == 2
    assert steps[1]["stages"] == [{"label": "02-tokenize", "docs_in": 13, "docs_out": 12}]
    assert len(reader._cache) == 3
    reader.forget(uri)
    assert reader._cache == {}
    assert (
        ProgressReader().snapshot(s3_bucket.uri("units/nothing"), planned)["steps"][0]["state"] == "waiting"
    )

    # The manifest appears when the run completes; a listing made before must not hide it.
    with pytest.raises(ArtifactMissing):
        artifact_list(uri)
    files = [{"path": "shards/shard-00000-00000.bin", "bytes": len(shard), "sha256": "s", "extra": 1}]
    (run_dir / "manifest.json").write_bytes(json.dumps({"files": files}).encode())
    assert artifact_list(uri) == [
        {"path": "shards/shard-00000-00000.bin", "bytes": len(shard), "sha256": "s"}
    ]
    assert read_manifest(uri + "/")["files"] == files
    assert read_mixture(uri)["mixtures"][0]["stage"] == "03-mix_v2"
    assert incremental_summary(uri)["added_files"] == ["a.jsonl"]
    assert incremental_summary(s3_bucket.uri("units/nothing")) is None

    # Only objects inside the run directory, by plain names.
    found = safe_file(uri, "shards/shard-00000-00000.bin")
    assert isinstance(found, UPath) and str(found) == f"{uri}/shards/shard-00000-00000.bin"
    assert str(safe_file(f"{uri}/report", "index.html")) == f"{uri}/report/index.html"
    for bad in (
        "../run-0000010/secret.txt",
        "shards/../../run-0000010/secret.txt",
        "shards/../stats.json",
        "./stats.json",
        "shards//shard-00000-00000.bin",
        "/etc/passwd",
        f"{uri}/stats.json",
        "shards",
        "shards/",
        "missing.json",
        "",
        "a\0b",
    ):
        with pytest.raises(ArtifactMissing):
            safe_file(uri, bad)

    # Downloads are streamed from the store in ranges, byte for byte.
    app = Starlette(
        routes=[
            Route("/download", lambda _: file_response(safe_file(uri, "shards/shard-00000-00000.bin"), True)),
            Route("/page", lambda _: file_response(safe_file(f"{uri}/report", "index.html"), False)),
        ]
    )
    with TestClient(app) as client:
        got = client.get("/download")
        assert got.status_code == 200 and got.content == shard
        assert got.headers["content-length"] == str(len(shard))
        assert got.headers["content-disposition"] == 'attachment; filename="shard-00000-00000.bin"'
        page = client.get("/page")
        assert page.content == b"<html>report</html>" and page.headers["content-type"].startswith("text/html")
        assert "content-disposition" not in page.headers
    _no_local_s3_dirs(tmp_path)


def test_run_location_never_reads_a_cached_listing(s3_bucket: Bucket) -> None:
    uri = s3_bucket.uri("units/fresh/run-000001")
    cached = run_path(uri)
    (cached / "a.json").write_bytes(b"{}")
    assert [p.name for p in cached.iterdir()] == ["a.json"]  # this listing is now cached by the shared fs
    # Another process (the job) puts the manifest: this process's shared fs does not hear of it.
    s3fs.S3FileSystem(skip_instance_cache=True).pipe_file(f"{cached.path}/manifest.json", b"{}")
    assert not (cached / "manifest.json").is_file()  # the shared fs answers from its stale listing
    assert (run_location(uri) / "manifest.json").is_file()
    assert run_location(Path("/x")) == Path("/x") and run_location("/x/y") == Path("/x/y")


def test_a_run_on_s3_is_submitted_with_its_recipe_there(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = Store(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    jobs = RecordingJobs()
    root = s3_bucket.uri("units/submit")
    clock = lambda: dt.datetime(2031, 1, 1, tzinfo=UTC)  # noqa: E731
    manager = RunManager(store, jobs, run_path(root), "python", clock)  # type: ignore[arg-type]
    recipe, _ = register_recipe(
        store, "name: r\ninput: {paths: [/x/*.jsonl]}\nstages: [tokenize]\n", manager.clock()
    )
    run = manager.trigger(recipe)
    assert run.run_dir == f"{root}/r/run-{run.id:06d}"
    recipe_uri = f"{run.run_dir}/{RECIPE_FILE}"
    assert run_path(recipe_uri).read_text() == recipe.normalized
    assert jobs.entrypoints[run.ray_job_id] == (
        f"python -m corpusmill.cli run {recipe_uri} --output {run.run_dir} --engine ray --address auto"
    )

    # The job ends: without manifest.json on the store the run failed; with it, it succeeded.
    assert manager.base_problem(run, recipe) == f"the directory of run {run.id} ({run.run_dir}) is gone"
    manager._apply(store.run(run.id), JobState("SUCCEEDED", None, None, None, 0))
    assert store.run(run.id).status == FAILED
    again = manager.trigger(recipe)
    for name, body in (("manifest.json", "{}"), ("parts.json", "{}"), ("stats.json", '{"incremental": {}}')):
        (run_path(again.run_dir) / name).write_bytes(body.encode())
    manager._apply(store.run(again.id), JobState("SUCCEEDED", None, None, None, 0))
    done = store.run(again.id)
    assert done.status == SUCCEEDED and done.incremental is not None
    assert manager.base_problem(done, recipe) is None

    # An incremental run builds on it where it lies.
    schedule = Scheduler(store, manager, clock).add("r", None, "0 * * * *", incremental=True)
    tick = store.fire_schedule(
        schedule, schedule.next_run_at, recipe, clock(), manager.place("r"), base_run_id=done.id
    )
    built = manager.submit(tick)
    assert built.base_run_id == done.id and built.base_note is None
    assert f" --output {built.run_dir} --base {done.run_dir} " in jobs.entrypoints[built.ray_job_id]
    _no_local_s3_dirs(tmp_path)


def test_run_reads_its_recipe_from_the_store(s3_bucket: Bucket, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.jsonl").write_text(
        "".join(json.dumps({"text": f"document {i} with a few words"}) + "\n" for i in range(5))
    )
    recipe = {"name": "fetched", "input": {"paths": [str(inputs / "*.jsonl")]}, "stages": ["tokenize"]}
    recipe_uri = s3_bucket.uri("units/recipe-uri/submitted-recipe.yaml")
    run_path(recipe_uri).write_bytes(yaml.safe_dump(recipe).encode())
    output = s3_bucket.uri("units/recipe-uri/run")
    result = CliRunner().invoke(app, ["run", recipe_uri, "--output", output, "--engine", "local"])
    assert result.exit_code == 0, result.output
    assert json.loads(run_path(output + "/manifest.json").read_text())["files"]
    missing = CliRunner().invoke(
        app, ["run", s3_bucket.uri("units/recipe-uri/missing.yaml"), "--output", output]
    )
    assert missing.exit_code == 2 and "cannot read the file" in missing.output


# -- end to end: a real Ray head whose jobs reach the S3 server ---------------------------------------------


@pytest.fixture(scope="module")
def s3_ray_head(s3_bucket: Bucket) -> Iterator[LocalRayHead]:
    """A Ray head started after the bucket's environment is set, so its jobs inherit the S3 endpoint."""
    head = LocalRayHead(num_cpus=2).start()
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture(scope="module")
def s3_service(
    s3_ray_head: LocalRayHead, s3_bucket: Bucket, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceHandle]:
    settings = ServiceSettings(
        data_dir=tmp_path_factory.mktemp("s3-service-data"),
        api_token=TOKEN,
        runs_dir=s3_bucket.uri("service-runs"),
        ray_address=s3_ray_head.dashboard_url,
        ray_token=s3_ray_head.token,
        job_python=sys.executable,
        poll_interval_s=0.3,
        schedule_interval_s=5,
    )
    handle = ServiceHandle(settings, FakeClock()).start()
    try:
        yield handle
    finally:
        handle.stop()


def _inputs(directory: Path) -> str:
    for name, lang in (("en.jsonl", "en"), ("de.jsonl", "de")):
        lines = [
            json.dumps({"text": f"{lang} document {i}: words about {lang} number {i}. " * 4, "lang": lang})
            for i in range(20)
        ]
        (directory / name).write_text("\n".join(lines) + "\n")
    return str(directory / "*.jsonl")


@pytest.mark.ray
def test_a_run_on_s3_through_the_service(
    s3_service: ServiceHandle, s3_ray_head: LocalRayHead, s3_bucket: Bucket, tmp_path: Path
) -> None:
    recipe = {
        "name": "on-s3",
        "input": {"paths": [_inputs(tmp_path)], "format": "jsonl", "lang_field": "lang", "part_bytes": 2048},
        "stages": [
            {"stage": "dedup_exact"},
            {"stage": "tokenize"},
            {"stage": "mix", "domain_column": "lang", "multipliers": {"en": 1.0}, "default_multiplier": 2.0},
            {"stage": "write_shards"},
        ],
    }
    assert s3_service.post("/api/recipes", json={"yaml": yaml.safe_dump(recipe)}).status_code == 201
    triggered = s3_service.post("/api/recipes/on-s3/runs", json={})
    assert triggered.status_code == 202, triggered.text
    run = s3_service.wait_for_run(triggered.json()["id"], finished, timeout_s=180)
    assert run["status"] == "SUCCEEDED", run["error"]
    run_id, uri = run["id"], run["run_dir"]
    assert uri == s3_bucket.uri(f"service-runs/on-s3/run-{run_id:06d}")

    # The run lies on the bucket, recipe and all.
    fs = s3_bucket.fs
    fs.invalidate_cache()
    prefix = uri.removeprefix("s3://")
    keys = {key.removeprefix(prefix + "/") for key in fs.find(prefix)}
    assert {RECIPE_FILE, "manifest.json", "stats.json", "report/index.html", "report/mixture.json"} <= keys
    assert yaml.safe_load(fs.cat(f"{prefix}/{RECIPE_FILE}"))["name"] == "on-s3"

    # Progress: every step done, with the run's own counts.
    steps = run["progress"]["steps"]
    assert [s["step"][3:].split("_v")[0] for s in steps] == ["dedup_exact", "tokenize", "mix", "write_shards"]
    assert all(s["state"] == "done" and s["parts_done"] >= 1 for s in steps), steps
    stats = json.loads(fs.cat(f"{prefix}/stats.json"))
    shown = {stage["label"]: stage["docs_out"] for s in steps for stage in s["stages"]}
    # (Reading is counted by the dedup step's index pass, whose markers progress does not sum, wherever the
    # run lies; every step's own stages are there.)
    expected = {
        s["label"]: s["counters"].get("docs_out", 0) for s in stats["stages"] if s["label"] != "00-read"
    }
    assert shown == expected

    # Artifacts: the manifest's listing, with the objects' sizes; downloads are the objects' bytes.
    listed = s3_service.get(f"/api/runs/{run_id}/artifacts").json()
    paths = [f["path"] for f in listed]
    assert "shards/manifest.json" in paths and any(p.endswith(".bin") for p in paths), paths
    for entry in listed:
        assert entry["bytes"] == fs.size(f"{prefix}/{entry['path']}"), entry
    shard = next(f for f in listed if f["path"].endswith(".bin"))
    body = s3_service.get(f"/api/runs/{run_id}/artifacts/{shard['path']}")
    assert body.status_code == 200 and body.content == fs.cat(f"{prefix}/{shard['path']}")
    assert hashlib.sha256(body.content).hexdigest() == shard["sha256"]
    manifest = s3_service.get(f"/api/runs/{run_id}/artifacts/manifest.json")
    assert manifest.content == fs.cat(f"{prefix}/manifest.json")
    for bad in ("..%2Fon-s3%2Frun-000001%2Fmanifest.json", "shards", "nothing.bin"):
        assert s3_service.get(f"/api/runs/{run_id}/artifacts/{bad}").status_code == 404, bad

    # The report, as JSON, as its page, and on the run's page; a mixture diff reads it too.
    assert s3_service.get(f"/api/runs/{run_id}/report").json() == json.loads(
        fs.cat(f"{prefix}/report/mixture.json")
    )
    page = s3_service.get(f"/runs/{run_id}/report/")
    assert page.status_code == 200 and page.content == fs.cat(f"{prefix}/report/index.html")
    assert page.headers["content-type"].startswith("text/html")
    run_page = s3_service.get(f"/runs/{run_id}").text
    assert shard["path"] in run_page and f"/runs/{run_id}/report/" in run_page
    diff = s3_service.get("/api/mixture-diff", params={"before": run_id, "after": run_id})
    assert diff.status_code == 200, diff.text
    rows = diff.json()["mixtures"][0]["domains"]
    assert {r["domain"] for r in rows} == {"en", "de"} and all(r["delta_tokens"] == 0 for r in rows)

    assert s3_ray_head.temp_dir is not None
    _no_local_s3_dirs(tmp_path, s3_service.settings.data_dir, s3_ray_head.temp_dir)


def test_serve_keeps_a_uri_runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from corpusmill.service.server import serve

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: served.append(app.state.settings))
    monkeypatch.setenv("CORPUSMILL_API_TOKEN", "t")
    logger = logging.getLogger("corpusmill")
    level = logger.level
    try:
        serve(data_dir=tmp_path, runs_dir="s3://bucket/runs/")
        monkeypatch.chdir(tmp_path)
        serve(data_dir=tmp_path, runs_dir=Path("local-runs"))
    finally:
        logger.setLevel(level)  # serve() turns the package's logging up
    assert [str(s.runs_root()) for s in served] == [
        "s3://bucket/runs",
        str(tmp_path.resolve() / "local-runs"),
    ]
