"""The service end to end on a real Ray head: a rebuild as a Ray job, followed through a service restart, with
its progress, artifacts, report, logs and mixture diff; a failing job; cancelling; state across restarts."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import httpx
import pytest
from servicekit import AUTH, TOKEN, FinishedRun, ServiceHandle, finished

from corpusmill.service.ray_head import LocalRayHead
from corpusmill.service.session import SESSION_COOKIE

pytestmark = pytest.mark.ray


def test_the_demo_run_finishes_after_a_restart_in_the_middle(finished_run: FinishedRun) -> None:
    run = finished_run.run
    # The service was restarted while the job ran; the new app re-attached to the job by its id.
    assert finished_run.status_at_restart == "RUNNING"
    assert finished_run.starts_after == finished_run.starts_before + 1
    parts_then = sum(step["parts_done"] for step in finished_run.progress_at_restart["steps"])
    parts_now = sum(step["parts_done"] for step in run["progress"]["steps"])
    assert 0 < parts_then < parts_now
    assert run["status"] == "SUCCEEDED" and run["error"] is None and run["trigger"] == "manual"
    assert run["ray_job_id"].startswith("corpusmill-demo-")
    assert run["created_at"] <= run["submitted_at"] <= run["started_at"] <= run["finished_at"]
    assert (finished_run.run_dir / "manifest.json").is_file()


def test_progress_counts_are_the_runs_own_stage_counts(finished_run: FinishedRun) -> None:
    stats = json.loads((finished_run.run_dir / "stats.json").read_text())
    expected = {
        s["label"]: (s["counters"].get("docs_in", 0), s["counters"].get("docs_out", 0))
        for s in stats["stages"]
    }
    shown = {
        stage["label"]: (stage["docs_in"], stage["docs_out"])
        for step in finished_run.run["progress"]["steps"]
        for stage in step["stages"]
    }
    assert shown == expected
    assert [step["state"] for step in finished_run.run["progress"]["steps"]] == ["done"] * 6
    # The mix stage repeats non-English documents 2.5x, so it puts out more than it takes in.
    assert shown["07-mix_v2"][1] > shown["07-mix_v2"][0]


def test_artifacts_are_the_manifest_and_download_byte_exact(
    service: ServiceHandle, finished_run: FinishedRun
) -> None:
    manifest = json.loads((finished_run.run_dir / "manifest.json").read_text())
    listed = service.get(f"/api/runs/{finished_run.id}/artifacts").json()
    assert listed == [{k: f[k] for k in ("path", "bytes", "sha256")} for f in manifest["files"]]
    shards = [f for f in listed if f["path"].startswith("shards/") and f["path"].endswith(".bin")]
    assert shards, listed
    for entry in (shards[0], next(f for f in listed if f["path"].startswith("documents/"))):
        body = service.get(f"/api/runs/{finished_run.id}/artifacts/{entry['path']}").content
        assert len(body) == entry["bytes"]
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]


def test_the_report_is_served_as_json_and_as_its_page(
    service: ServiceHandle, finished_run: FinishedRun
) -> None:
    report_dir = finished_run.run_dir / "report"
    data = service.get(f"/api/runs/{finished_run.id}/report").json()
    assert data == json.loads((report_dir / "mixture.json").read_text())
    domains = {d["domain"] for d in data["mixtures"][0]["domains"]}
    assert "en" in domains and len(domains) > 1  # keyed on language, as the recipe's mix stage says
    page = service.get(f"/runs/{finished_run.id}/report/")
    assert page.status_code == 200 and page.content == (report_dir / "index.html").read_bytes()
    assert service.get(f"/runs/{finished_run.id}/report", follow_redirects=True).content == page.content


def test_logs_come_from_the_jobs_api(service: ServiceHandle, finished_run: FinishedRun) -> None:
    logs = service.get(f"/api/runs/{finished_run.id}/logs")
    assert logs.status_code == 200
    assert "documents kept: 345" in logs.text or "documents kept:" in logs.text
    assert str(finished_run.run_dir) in logs.text
    tail = service.get(f"/api/runs/{finished_run.id}/logs", params={"tail": 3}).text
    assert tail.splitlines() == logs.text.splitlines()[-3:]


def test_a_mixture_compared_with_itself_has_no_delta(
    service: ServiceHandle, finished_run: FinishedRun
) -> None:
    mixture = json.loads((finished_run.run_dir / "report" / "mixture.json").read_text())["mixtures"][0]
    diff = service.get(
        "/api/mixture-diff", params={"before": finished_run.id, "after": finished_run.id}
    ).json()
    (section,) = diff["mixtures"]
    assert section["tokens_before"] == section["tokens_after"] == mixture["achieved_tokens"]
    assert {d["domain"]: d["tokens_after"] for d in section["domains"]} == {
        d["domain"]: d["achieved_tokens"] for d in mixture["domains"]
    }
    assert all(d["delta_tokens"] == 0 and d["delta_share"] == 0 for d in section["domains"])
    assert (
        service.get("/api/mixture-diff", params={"before": finished_run.id, "after": 99999}).status_code
        == 404
    )


def test_pages_list_the_run_and_show_its_progress(service: ServiceHandle, finished_run: FinishedRun) -> None:
    listing = service.get("/runs").text
    assert f'data-run-id="{finished_run.id}"' in listing and 'data-status="SUCCEEDED"' in listing
    detail = service.get(f"/runs/{finished_run.id}").text
    assert 'id="report-link"' in detail and 'http-equiv="refresh"' not in detail
    for step in finished_run.run["progress"]["steps"]:
        for stage in step["stages"]:
            assert f'data-stage="{stage["label"]}"' in detail
            assert f'data-docs-out="{stage["docs_out"]}"' in detail
    assert service.get("/runs/99999").status_code == 404


def test_state_comes_back_after_a_restart(service: ServiceHandle, finished_run: FinishedRun) -> None:
    paths = [f"/api/runs/{finished_run.id}", "/api/recipes", "/api/recipes/demo/versions", "/api/schedules"]
    before = [service.get(path).json() for path in paths]
    login = service.post("/login", data={"token": TOKEN, "next": "/runs"}, headers={}, follow_redirects=False)
    assert login.status_code == 303
    cookie = {SESSION_COOKIE: login.cookies[SESSION_COOKIE]}
    service.restart()
    assert [service.get(path).json() for path in paths] == before
    assert before[0]["status"] == "SUCCEEDED"
    # The session signing key is in the database, so a browser stays logged in across the restart.
    page = httpx.get(f"{service.url}/runs/{finished_run.id}", cookies=cookie)
    assert 'name="csrf"' in page.text and "Log in" not in page.text
    assert 'name="csrf"' not in httpx.get(f"{service.url}/runs/{finished_run.id}").text


def test_a_failing_job_is_marked_failed_with_its_reason(
    service: ServiceHandle, failing_recipe: str, ray_head: LocalRayHead, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    registered = service.post(
        "/api/recipes", content=failing_recipe, headers={**AUTH, "content-type": "application/yaml"}
    )
    assert registered.status_code in (200, 201), registered.text
    run = service.post("/api/recipes/no-input/runs").json()
    run = service.wait_for_run(run["id"], finished)
    assert run["status"] == "FAILED"
    first_line = run["error"].splitlines()[0]
    # The CLI's own message comes first: it names the missing input.
    assert first_line.startswith("error:") and "/nonexistent/corpusmill-<i>svc</i>" in first_line
    assert "Ray job FAILED (exit code 1)" in run["error"]
    # The job's log is kept apart from the cause, without terminal colour codes.
    assert run["error_detail"] and "\x1b" not in run["error"] + run["error_detail"]
    assert run["finished_at"] is not None
    assert service.get(f"/api/runs/{run['id']}/artifacts").status_code == 404
    assert service.get(f"/api/runs/{run['id']}/report").status_code == 404
    page = service.get(f"/runs/{run['id']}").text
    assert "corpusmill-&lt;i&gt;svc&lt;/i&gt;" in page and "<i>svc</i>" not in page
    # Neither the API token nor the cluster's token was logged on the way (submit, poll, fail).
    assert f"Ray job {run['ray_job_id']}" in caplog.text or run["ray_job_id"] in caplog.text
    assert TOKEN not in caplog.text and ray_head.token not in caplog.text


def test_cancelling_stops_the_job(service: ServiceHandle, demo_recipe: str) -> None:
    service.post("/api/recipes", json={"yaml": demo_recipe})
    run = service.post("/api/recipes/demo/runs").json()
    run = service.wait_for_run(run["id"], lambda r: r["status"] == "RUNNING" or finished(r), timeout_s=120)
    assert run["status"] == "RUNNING"
    assert 'http-equiv="refresh"' in service.get(f"/runs/{run['id']}").text  # live page while it runs
    assert service.post(f"/api/runs/{run['id']}/cancel").status_code == 202
    run = service.wait_for_run(run["id"], finished, timeout_s=120)
    assert run["status"] == "CANCELLED" and "stopped" in run["error"]
    assert not (Path(run["run_dir"]) / "manifest.json").exists()
    again = service.post(f"/api/runs/{run['id']}/cancel")
    assert again.status_code == 409 and "CANCELLED" in again.json()["error"]["message"]
