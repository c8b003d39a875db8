"""Shared fixtures of the service tests: one real Ray head, the demo corpus, a running service, one finished run.

Everything expensive happens once per session: the Ray head (started by the service's own LocalRayHead), the
demo run (submitted through the API as a Ray job, with a service restart while it runs), and the service
itself, which tests reach over real HTTP. `ServiceHandle.restart()` stops the app and starts a new one on the
same database and data directory, so whichever test restarts it, later tests talk to the new one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from servicekit import REPO, TOKEN, FakeClock, FinishedRun, ServiceHandle, finished

from corpusmill.demo.corpus import write_demo_corpus
from corpusmill.service.ray_head import LocalRayHead
from corpusmill.service.settings import ServiceSettings


@pytest.fixture(scope="session")
def ray_head() -> Iterator[LocalRayHead]:
    """A real Ray head with the Jobs API, started by the service's own code; it outlives service restarts."""
    head = LocalRayHead(num_cpus=2).start()
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture(scope="session")
def demo_recipe(tmp_path_factory: pytest.TempPathFactory) -> str:
    """recipes/demo.yaml over a 2-file demo crawl, plus a `mix` stage keyed on language before the shards."""
    corpus = tmp_path_factory.mktemp("demo-corpus")
    write_demo_corpus(corpus, num_files=2)
    recipe = yaml.safe_load((REPO / "recipes" / "demo.yaml").read_text())
    recipe["input"]["paths"] = [str(corpus / "*.warc.gz")]
    mix = {"stage": "mix", "domain_column": "lang", "multipliers": {"en": 1.0}, "default_multiplier": 2.5}
    stages = recipe["stages"]
    stages.insert(next(i for i, s in enumerate(stages) if s["stage"] == "write_shards"), mix)
    return yaml.safe_dump(recipe, sort_keys=False)


@pytest.fixture(scope="session")
def failing_recipe() -> str:
    """A valid recipe whose input does not exist: the job fails at its start, quickly."""
    return yaml.safe_dump(
        {
            "name": "no-input",
            "input": {"paths": ["/nonexistent/corpusmill-<i>svc</i>/*.jsonl"], "format": "jsonl"},
            "stages": [{"stage": "tokenize"}],
        }
    )


@pytest.fixture(scope="session")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def service(
    ray_head: LocalRayHead, clock: FakeClock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceHandle]:
    """The service under test, submitting to the session's Ray head."""
    settings = ServiceSettings(
        data_dir=tmp_path_factory.mktemp("service-data"),
        api_token=TOKEN,
        ray_address=ray_head.dashboard_url,
        ray_token=ray_head.token,
        job_python=sys.executable,  # the test's head runs on this machine, where corpusmill is in this venv
        poll_interval_s=0.5,
        schedule_interval_s=0.2,
    )
    handle = ServiceHandle(settings, clock).start()
    try:
        yield handle
    finally:
        handle.stop()


def _has_progress(progress: dict[str, Any] | None) -> bool:
    return bool(progress and any(step["parts_done"] for step in progress["steps"]))


@pytest.fixture(scope="session")
def finished_run(service: ServiceHandle, demo_recipe: str, ray_head: LocalRayHead) -> FinishedRun:
    """Register the demo recipe, rebuild it now, restart the service while the job runs, follow it to the end."""
    registered = service.post("/api/recipes", json={"yaml": demo_recipe})
    assert registered.status_code in (200, 201), registered.text
    triggered = service.post(f"/api/recipes/{registered.json()['name']}/runs", json={})
    assert triggered.status_code == 202, triggered.text
    run_id = triggered.json()["id"]
    # Restart once the job is running and has committed some progress: the new app must re-attach by job id.
    running = service.wait_for_run(
        run_id, lambda r: finished(r) or (r["status"] == "RUNNING" and _has_progress(r["progress"]))
    )
    starts_before = service.starts
    service.restart()
    run = service.wait_for_run(run_id, finished)
    assert run["status"] == "SUCCEEDED", run.get("error")
    return FinishedRun(run, running["status"], running["progress"], starts_before, service.starts)
