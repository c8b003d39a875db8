"""In a real headless Chromium, the pages as an operator's console: log in with the token, register a recipe
by pasting it, start a run from the recipe page and watch its page reach the end (with a time per step),
cancel another run, create a schedule, change it, pause it and delete it; and, without logging in, no page
offers an action and no action POST works.

Uses Debian's `chromium` package through Playwright (no browser download). Screenshots of the pages go to
build/test-artifacts/service/ (never committed).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from servicekit import REPO, TOKEN, ServiceHandle, finished

pytestmark = pytest.mark.ray

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "build" / "test-artifacts" / "service"
FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
RUN_TIMEOUT_S = 300


@pytest.fixture
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium`"
    )
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _run_id(url: str) -> int:
    found = re.search(r"/runs/(\d+)$", url)
    assert found, url
    return int(found.group(1))


def _wait_for_status(page: Any, url: str, until: tuple[str, ...], timeout_s: float = RUN_TIMEOUT_S) -> str:
    """Reload the run page until its status line shows one of `until`."""
    deadline = time.monotonic() + timeout_s
    while True:
        page.goto(url)
        status = page.locator("#run-status").get_attribute("data-status")
        if status in until:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} still {status} after {timeout_s:.0f} s")
        time.sleep(1)


def _log_in(page: Any, service: ServiceHandle) -> None:
    page.goto(f"{service.url}/runs")
    page.locator("#login-link").click()
    page.wait_for_url(re.compile(r"/login"))
    page.fill('input[name="token"]', TOKEN)
    page.locator("#login-form button").click()
    page.wait_for_url(f"{service.url}/runs")
    assert page.locator("#flash").inner_text() == "Logged in."


@pytest.fixture
def small_recipe(tmp_path: Path) -> str:
    """A recipe over two small JSONL files through three steps: a run takes seconds, not the demo crawl's."""
    for lang in ("en", "de"):
        lines = [json.dumps({"text": f"{lang} document {i}, " * 20, "lang": lang}) for i in range(30)]
        (tmp_path / f"{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    recipe = {
        "name": "pasted",
        "input": {"paths": [str(tmp_path / "*.jsonl")], "format": "jsonl", "lang_field": "lang"},
        "stages": [{"stage": "dedup_exact"}, {"stage": "tokenize"}, {"stage": "write_shards"}],
    }
    return yaml.safe_dump(recipe, sort_keys=False)


def test_an_operator_starts_watches_cancels_and_pauses_from_the_pages(
    service: ServiceHandle, small_recipe: str, browser: Any
) -> None:
    page = browser.new_page()
    schedule_id = None
    try:
        _log_in(page, service)

        # Register the recipe by pasting it into the form.
        page.goto(f"{service.url}/recipes")
        page.locator("#register-recipe-link").click()
        page.fill("#recipe-yaml", small_recipe)
        with page.expect_navigation():
            page.locator("#recipe-form button").click()
        name = yaml.safe_load(small_recipe)["name"]
        assert page.url == f"{service.url}/recipes/{name}"
        # Other tests of this session may have registered the same recipe: then it is unchanged.
        assert re.fullmatch(
            rf"Recipe {name} (v\d+ registered|unchanged \(same as v\d+\))\.",
            page.locator("#flash").inner_text(),
        )
        version = service.get(f"/api/recipes/{name}").json()["latest"]["version"]

        # Start a run from the recipe page and follow its page to the end.
        page.goto(f"{service.url}/recipes")
        page.locator(f'tr[data-recipe="{name}"] a.recipe-link').click()
        page.wait_for_url(f"{service.url}/recipes/{name}")
        page.screenshot(path=str(ARTIFACTS / "recipe.png"), full_page=True)
        page.locator(f"#run-v{version} button").click()
        page.wait_for_url(re.compile(r"/runs/\d+$"))
        run_url = page.url
        assert "started" in page.locator("#flash").inner_text()
        status = _wait_for_status(page, run_url, FINAL)
        page.screenshot(path=str(ARTIFACTS / "run-finished.png"), full_page=True)
        assert status == "SUCCEEDED", page.locator("#run-error").all_inner_texts()
        assert page.locator("#run-status").inner_text().startswith("SUCCEEDED")
        assert page.locator("#tokens-written").inner_text() != "–"
        assert len(page.locator("#artifacts code.sha").first.inner_text()) == 64
        took = page.locator("td.took[data-seconds]")  # from the runner's timings.json
        assert took.count() >= 2 and all(float(t.get_attribute("data-seconds")) >= 0 for t in took.all())

        # Start another and cancel it from its page.
        page.goto(f"{service.url}/recipes/{name}")
        page.locator(f"#run-v{version} button").click()
        page.wait_for_url(re.compile(r"/runs/\d+$"))
        second_url = page.url
        assert second_url != run_url
        with page.expect_navigation():  # the POST, then the 303 back to the same address
            page.locator("#cancel-form button").click()
        assert page.url == second_url
        assert "cancel" in page.locator("#flash").inner_text().lower()
        assert _wait_for_status(page, second_url, FINAL) == "CANCELLED"
        page.screenshot(path=str(ARTIFACTS / "run-cancelled.png"), full_page=True)
        assert service.get(f"/api/runs/{_run_id(second_url)}").json()["status"] == "CANCELLED"

        # Create a schedule from the schedules page, change it on its own page, pause it, delete it.
        page.goto(f"{service.url}/schedules")
        page.select_option("#new-recipe", name)
        page.fill("#new-cron", "0 3 * * *")
        page.select_option("#new-overlap", "queue")
        with page.expect_navigation():
            page.locator("#new-schedule-form button").click()
        found = re.search(r"/schedules/(\d+)$", page.url)
        assert found, page.url
        schedule_id = int(found.group(1))
        assert page.locator("#flash").inner_text() == f"Schedule #{schedule_id} created."
        assert page.locator("#overlap").get_attribute("data-overlap") == "queue"
        page.fill("#edit-cron", "@daily")
        page.fill("#edit-timezone", "Europe/Berlin")
        with page.expect_navigation():
            page.locator("#edit-schedule-form button").click()
        assert page.locator("#flash").inner_text() == f"Schedule #{schedule_id} changed."
        assert page.locator("#next-ticks li").count() == 3
        page.screenshot(path=str(ARTIFACTS / "schedule.png"), full_page=True)
        stored = service.get(f"/api/schedules/{schedule_id}").json()
        assert (stored["cron"], stored["timezone"], stored["overlap"]) == ("@daily", "Europe/Berlin", "queue")
        with page.expect_navigation():
            page.locator(f"#pause-{schedule_id} button").click()
        assert page.url == f"{service.url}/schedules/{schedule_id}"
        assert page.locator("#schedule-state").get_attribute("data-state") == "paused"
        assert service.get(f"/api/schedules/{schedule_id}").json()["paused"] is True
        page.goto(f"{service.url}/schedules")
        row = page.locator(f'tr[data-schedule-id="{schedule_id}"]')
        assert row.locator("td.state").inner_text() == "paused"
        assert row.locator(f"#resume-{schedule_id}").count() == 1
        page.screenshot(path=str(ARTIFACTS / "schedules.png"), full_page=True)
        page.goto(f"{service.url}/schedules/{schedule_id}")
        with page.expect_navigation():
            page.locator("#delete-schedule-form button").click()
        assert page.locator("#schedule-state").get_attribute("data-state") == "deleted"
        assert service.get(f"/api/schedules/{schedule_id}").status_code == 404
        schedule_id = None
    finally:
        page.close()
        if schedule_id is not None:
            service.request("DELETE", f"/api/schedules/{schedule_id}")


def test_without_logging_in_no_action_is_offered_or_works(
    service: ServiceHandle, failing_recipe: str, browser: Any
) -> None:
    registered = service.post("/api/recipes", json={"yaml": failing_recipe}).json()
    name = registered["name"]
    schedule = service.post(
        "/api/schedules", json={"recipe": name, "cron": "0 3 * * *", "paused": True}
    ).json()
    run = service.post(f"/api/recipes/{name}/runs", json={}).json()  # fails at once: cheap to have
    try:
        page = browser.new_page()
        for path in (
            f"/recipes/{name}",
            f"/runs/{run['id']}",
            "/schedules",
            f"/schedules/{schedule['id']}",
            "/runs",
            "/recipes/-/new",
        ):
            page.goto(f"{service.url}{path}")
            assert page.locator('form[method="post"]').count() == 0, path
            assert page.locator("#login-link").count() == 1, path
        page.screenshot(path=str(ARTIFACTS / "recipe-logged-out.png"), full_page=True)
        page.close()

        # Plain HTTP, as another site's form or a script would send it: 403 and nothing happens.
        with service.client() as client:
            for data in ({}, {"csrf": "forged"}):
                for path in (
                    f"/runs/{run['id']}/cancel",
                    f"/recipes/{name}/versions/{registered['version']}/run",
                    f"/schedules/{schedule['id']}/resume",
                    f"/schedules/{schedule['id']}/edit",
                    f"/schedules/{schedule['id']}/delete",
                    f"/recipes/{name}/delete",
                    "/recipes/-/new",
                    "/schedules/new",
                ):
                    assert client.post(path, data=data).status_code == 403, path
            # Logged in, but without the session's CSRF token: still 403.
            assert client.post("/login", data={"token": TOKEN}).status_code == 303
            assert (
                client.post(f"/schedules/{schedule['id']}/resume", data={"csrf": "forged"}).status_code == 403
            )
        assert service.get(f"/api/schedules/{schedule['id']}").json()["paused"] is True
        assert [s["id"] for s in service.get("/api/schedules").json()].count(schedule["id"]) == 1
        assert service.get(f"/api/recipes/{name}/versions").status_code == 200
        runs = service.get("/api/runs", params={"recipe": name, "limit": 1000}).json()
        assert [r["id"] for r in runs if r["id"] > run["id"]] == []  # no run started
        assert service.get(f"/api/runs/{run['id']}").json()["status"] != "CANCELLED"
    finally:
        service.wait_for_run(run["id"], finished)
        service.request("DELETE", f"/api/schedules/{schedule['id']}")
