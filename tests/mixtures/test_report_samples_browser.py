"""From the report's charts to the documents behind them, in a real headless Chromium, offline, from disk.

A click on a domain's bar in the mixture chart opens that domain's sample page, whose numbers are the domain's
numbers in mixture.json; a click on a sampled document opens its full text. A drop reason of the funnel and a
quality bin lead to their pages too. Nothing is fetched but the report's own files, and the hostile domain and
texts run nothing. Screenshots of the pages go to build/test-artifacts/report/ (never committed).

Uses Debian's `chromium` package through Playwright (no browser download): `apt-get install -y chromium`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from samplekit import HOSTILE, MIX, rows, write_run

from corpusmill.mixtures.report import build_report

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "report"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report(write_run(tmp_path_factory.mktemp("samples-browser")))


def test_a_domain_bar_leads_to_its_samples_and_a_document_to_its_text(report: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    mixture = json.loads((report / "mixture.json").read_text())["mixtures"][0]
    news = next(d for d in mixture["domains"] if d["domain"] == "news")
    texts = {doc["id"]: doc["text"] for doc in rows()[0]}
    index = (report / "index.html").as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            dialogs: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(index, wait_until="load")
            page.screenshot(path=str(ARTIFACTS / "index.png"), full_page=True)
            assert not page.locator("#back-to-run").is_visible()  # from disk: no run page to go back to

            # The before/after chart: one factor per domain, up for code, down for news.
            badges = page.locator("svg#shares-chart text.badge")
            assert badges.count() == len(mixture["domains"])
            shown = [badges.nth(i).text_content() or "" for i in range(2)]  # its <title>, then what shows
            assert shown[0].endswith(")▼ x0.5") and shown[1].endswith(")▲ x2.0"), shown
            assert page.locator('table#domains tr[data-domain="code"] td[data-factor]').inner_text() == "x2.0"

            # One click on a bar of news in the mixture chart: news's samples, with news's numbers.
            page.locator('svg#shares-chart a[href="samples/domain-news.html"] rect.bar').first.click()
            page.wait_for_url("**/samples/domain-news.html")
            assert page.locator("h1").inner_text() == "Domain news"
            for key in (
                "tokens_before",
                "eligible_tokens",
                "planned_tokens",
                "achieved_tokens",
                "achieved_documents",
            ):
                cell = page.locator(f'#cell-numbers tr[data-number="{key}"] td[data-value]')
                assert float(cell.get_attribute("data-value") or "nan") == news[key], key
                assert float(cell.inner_text().replace(",", "")) == round(news[key]), key
            docs = page.locator("li.doc")
            assert docs.count() == 5
            assert not page.locator("#back-to-run").is_visible()
            page.screenshot(path=str(ARTIFACTS / "sample-domain.png"), full_page=True)

            # A sampled document: its full text, as it is in the run.
            doc_id = docs.first.get_attribute("data-id") or ""
            docs.first.locator("a.doc-link").click()
            page.wait_for_url("**/documents/*.html")
            assert page.locator("#text").text_content() == texts[doc_id]
            assert page.locator('#fields tr[data-field="id"] td').nth(1).inner_text() == doc_id
            assert page.locator("#text").is_visible()
            page.screenshot(path=str(ARTIFACTS / "document.png"), full_page=True)
            page.locator("#report-link").click()
            page.wait_for_url(index)

            # A drop reason of the funnel: the rows the mix stage dropped for it.
            page.locator(f'table#funnel tr[data-stage="{MIX}"] span[data-reason="mix_downsampled"] a').click()
            page.wait_for_url("**/samples/drop-02-mix_v1-mix_downsampled.html")
            assert page.locator("h1").inner_text() == f"Dropped by {MIX}: mix_downsampled"
            reasons = page.locator("li.doc .drop")
            assert reasons.count() == 5
            assert {reasons.nth(i).get_attribute("data-reason") for i in range(5)} == {"mix_downsampled"}
            page.screenshot(path=str(ARTIFACTS / "sample-drop.png"), full_page=True)
            page.go_back()

            # The hostile reason's legend entry, then a quality bin: shown as text, nothing runs.
            page.locator(f".legend span.key[data-key={json.dumps('dropped: ' + HOSTILE)}] a").click()
            page.wait_for_url("**/samples/drop-01-filter_v1-*.html")
            assert HOSTILE in page.locator("h1").inner_text()
            page.locator("li.doc a.doc-link").first.click()
            page.wait_for_url("**/documents/*.html")
            assert HOSTILE in (page.locator("#text").text_content() or "")
            page.goto(index)
            page.locator('svg#quality-chart-0 a[href="samples/quality-2-3.html"]').first.click()
            page.wait_for_url("**/samples/quality-2-3.html")
            assert page.locator("li.doc").count() == 5

            assert dialogs == [] and page.evaluate("window.pwned === undefined")
            root = report.as_uri() + "/"
            assert requests and all(url.startswith(root) for url in requests), requests
        finally:
            browser.close()
