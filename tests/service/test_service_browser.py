"""In a real headless Chromium: from the service's runs list to a run, to its mixture report, whose tables
show the numbers of the run's own report/mixture.json.

Uses Debian's `chromium` package through Playwright (no browser download).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from servicekit import FinishedRun, ServiceHandle

pytestmark = pytest.mark.ray

CHROMIUM = Path("/usr/bin/chromium")


def _number(text: str) -> float:
    return float(text.split()[0].replace(",", ""))


def test_clicking_through_to_the_report_shows_the_runs_mixture(
    service: ServiceHandle, finished_run: FinishedRun
) -> None:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium`"
    )
    from playwright.sync_api import sync_playwright

    mixture = json.loads((finished_run.run_dir / "report" / "mixture.json").read_text())["mixtures"][0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"{service.url}/runs")
            row = page.locator(f'tr[data-run-id="{finished_run.id}"]')
            assert row.locator(".status").inner_text() == "SUCCEEDED"
            row.locator("a.run-link").click()
            page.wait_for_url(f"{service.url}/runs/{finished_run.id}")
            assert page.locator("#run-status").inner_text() == "SUCCEEDED"
            read = page.locator('#progress tr[data-stage="00-read"] td[data-docs-out]').inner_text()
            assert _number(read) == finished_run.run["progress"]["steps"][0]["stages"][0]["docs_out"]
            page.locator("#report-link").click()
            page.wait_for_url(f"{service.url}/runs/{finished_run.id}/report/")

            rows = page.locator("table#domains tbody tr")
            assert rows.count() == len(mixture["domains"])
            for i, expected in enumerate(mixture["domains"]):
                row = rows.nth(i)
                assert row.get_attribute("data-domain") == expected["domain"]
                assert row.locator("td.name").inner_text() == expected["domain"]
                cell = {
                    key: row.locator(f"td[data-{key}]").inner_text()
                    for key in ("documents-before", "tokens-before", "planned-tokens", "achieved-tokens")
                }
                assert _number(cell["documents-before"]) == expected["documents_before"]
                assert _number(cell["tokens-before"]) == expected["tokens_before"]
                assert _number(cell["planned-tokens"]) == round(expected["planned_tokens"])
                assert _number(cell["achieved-tokens"]) == expected["achieved_tokens"]
            # Every page came from the service itself: nothing from a CDN or elsewhere.
            assert requests and all(url.startswith(service.url) for url in requests), requests
        finally:
            browser.close()
