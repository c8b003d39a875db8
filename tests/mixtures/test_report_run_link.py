"""The report's way back to its run: served by the service under /runs/{id}/report/, every report page (the
index, a sample page, a document page) shows a link to exactly /runs/{id}, the run's page; opened from disk,
where there is no run page, the link stays hidden.

The service here is its pages over a real store, without Ray: a run is added by hand, pointing at a report
built from the sample kit's run. The link is shown by the page's own script, so the decisive checks run in a
real headless Chromium (Debian's `chromium` through Playwright, skipped where it is missing).
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from samplekit import write_run

from corpusmill.mixtures.report import build_report
from corpusmill.mixtures.report_html import RUN_NAV_SCRIPT
from corpusmill.service.context import Services
from corpusmill.service.db import make_engine
from corpusmill.service.pages import router as pages_router
from corpusmill.service.recipes import register_recipe
from corpusmill.service.runs import RunManager
from corpusmill.service.scheduler import Scheduler
from corpusmill.service.settings import ServiceSettings
from corpusmill.service.store import SUCCEEDED, Store

CHROMIUM = Path("/usr/bin/chromium")
NOW = dt.datetime(2031, 1, 1, 12, tzinfo=dt.UTC)
RECIPE = "name: linked\ninput: {paths: [/x/*.jsonl]}\nstages: [tokenize]\n"
SAMPLE_PAGE = "samples/domain-news.html"


class NoJobs:
    """The Jobs API, never called: no run is submitted here."""

    address = "http://ray.invalid:8265"


@dataclass(frozen=True)
class Served:
    """The pages app with one finished run whose report is `report`."""

    app: FastAPI
    run_id: int
    report: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    root = tmp_path_factory.mktemp("run-link")
    run_dir = write_run(root / "run")
    report = build_report(run_dir)
    store = Store(make_engine(f"sqlite:///{root / 'db.sqlite'}"))
    recipe, _ = register_recipe(store, RECIPE, NOW)
    for _ in range(6):  # the run is not the first, so a link to /runs/1 would be wrong
        store.add_run(recipe, NOW, lambda i: (str(root / f"other-{i}"), f"job-{i}"))
    run = store.add_run(recipe, NOW, lambda i: (str(run_dir), f"job-{i}"))
    store.update_run(run.id, status=SUCCEEDED)
    settings = ServiceSettings(data_dir=root, api_token="t" * 24)
    clock = lambda: NOW  # noqa: E731
    manager = RunManager(store, NoJobs(), root / "runs", "python", clock)  # type: ignore[arg-type]
    app = FastAPI()
    app.state.settings = settings
    app.state.services = Services(settings, store, manager, Scheduler(store, manager, clock), clock)
    app.include_router(pages_router)
    return Served(app, run.id, Path(report))


def _target(path: str) -> str | None:
    """Where the page's script points the link on a page served at `path` (its regular expression, in Python)."""
    pattern = re.search(r"match\(/(.+?)/\)", RUN_NAV_SCRIPT)
    assert pattern, RUN_NAV_SCRIPT
    found = re.match(pattern.group(1).replace("\\/", "/"), path)
    return found.group(1) if found else None


def test_every_report_page_carries_the_hidden_link_and_its_guard(served: Served) -> None:
    for name in ("index.html", SAMPLE_PAGE):
        page = (served.report / name).read_text()
        assert '<nav class="run-nav" id="run-nav" hidden><a id="back-to-run"' in page, name
        assert f"<script>{RUN_NAV_SCRIPT}</script>" in page, name
    assert "/^https?:$/.test(location.protocol)" in RUN_NAV_SCRIPT  # from disk (file:) it stays hidden


def test_the_link_target_is_the_run_page_from_every_depth(served: Served) -> None:
    base = f"/runs/{served.run_id}/report/"
    document = next(p.relative_to(served.report) for p in (served.report / "documents").glob("*.html"))
    with TestClient(served.app) as client:
        for page in ("", "index.html", SAMPLE_PAGE, str(document)):
            assert client.get(base + page).status_code == 200, page
            assert _target(base + page) == f"/runs/{served.run_id}", page
            run_page = client.get(f"/runs/{served.run_id}")
            assert run_page.status_code == 200 and f"<h1>Run #{served.run_id} " in run_page.text
    assert _target("/bucket/runs/x/report/index.html") is None  # elsewhere on the web: no run page
    assert _target("/prefix/runs/7/report/samples/a.html") == "/prefix/runs/7"  # behind a path prefix


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def url(served: Served) -> Iterator[str]:
    """The pages app on real HTTP, on loopback, for the browser."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(served.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="report-link-pages", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the pages did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_in_a_browser_the_link_leads_back_to_the_run_and_is_hidden_from_disk(
    served: Served, url: str
) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    run_page = f"{url}/runs/{served.run_id}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            for start in ("", SAMPLE_PAGE):
                page.goto(f"{run_page}/report/{start}", wait_until="load")
                link = page.locator("#back-to-run")
                assert link.is_visible(), start
                assert link.inner_text() == f"← run #{served.run_id}"
                link.click()
                page.wait_for_url(run_page)
                assert page.locator("h1").inner_text().startswith(f"Run #{served.run_id} ")
            for name in ("index.html", SAMPLE_PAGE):  # from disk: no service, no run page, no link
                page.goto((served.report / name).as_uri(), wait_until="load")
                assert (
                    page.locator("#back-to-run").count() == 1
                    and not page.locator("#back-to-run").is_visible()
                )
        finally:
            browser.close()
