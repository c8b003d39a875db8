"""The report page in a real headless Chromium: charts render offline and the tables show mixture.json's numbers.

Uses Debian's `chromium` package through Playwright (no browser download): `apt-get install -y chromium`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from corpusmill.mixtures.report import build_report

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = "<img src=x onerror=\"window.pwned=1;alert('x')\">&amp;"


def _stats() -> dict[str, Any]:
    """Three domains: web down-sampled on plan, code repeated but short of plan, HOSTILE left out."""
    domains = {
        "web": (400, 40_000, 0.5, 20_000.0, 20_100, 200, {10: 300, 14: 100}),
        "code": (100, 10_000, 1.8, 18_000.0, 17_000, 170, {6: 40, 16: 60}),
        HOSTILE: (50, 5_000, 0.0, 0.0, 0, 0, {1: 50}),
    }
    accounting = {
        name: {
            "documents": docs,
            "tokens": tokens,
            "bytes": 4 * tokens,
            "eligible_documents": docs,
            "eligible_tokens": tokens,
            "unscored_documents": docs - sum(bins.values()),
            "quality_documents": [bins.get(i, 0) for i in range(20)],
            "quality_tokens": [100 * bins.get(i, 0) for i in range(20)],
        }
        for name, (docs, tokens, _, _, _, _, bins) in domains.items()
    }
    counters = {"docs_in": 550, "docs_out": 370, "dropped.mix_downsampled": 200, "dropped.mix_excluded": 50}
    counters["repeated_copies"] = 70
    for name, (_, _, _, _, tokens_out, docs_out, _) in domains.items():
        if docs_out:
            counters[f"documents_out.{name}"] = docs_out
            counters[f"tokens_out.{name}"] = tokens_out
    rows = [
        {
            "domain": name,
            "eligible_documents": docs,
            "eligible_tokens": tokens,
            "requested": rate,
            "rate": rate,
            "expected_tokens": planned,
            "expected_documents": rate * docs,
            "capped": False,
        }
        for name, (docs, tokens, rate, planned, _, _, _) in domains.items()
    ]
    return {
        "recipe": "browser",
        "engine": "local",
        "documents_out": 370,
        "tokens_written": 0,
        "sinks": {},
        "stages": [
            {"label": "00-read", "counters": {"docs_out": 550, "reader.documents": 550}},
            {"label": "01-tokenize_v1", "counters": {"docs_in": 550, "docs_out": 550, "tokens": 55_000}},
            {"label": "02-mix_v1", "counters": counters},
        ],
        "plans": {
            "02-mix_v1": {
                "seed": 0,
                "rates": {r["domain"]: r["rate"] for r in rows},
                "mixture": {
                    "mode": "multipliers",
                    "budget": None,
                    "max_epochs": 4.0,
                    "expected_tokens": 38_000.0,
                    "domains": rows,
                    "warnings": [],
                },
                "accounting": {
                    "domains": accounting,
                    "sources": {"a.jsonl": {"documents": 550, "tokens": 55_000}},
                    "langs": {
                        "en": {"documents": 500, "tokens": 50_000},
                        "fr": {"documents": 50, "tokens": 5_000},
                    },
                },
            }
        },
    }


def _number(text: str) -> float:
    return float(text.split()[0].replace(",", ""))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("browser") / "run"
    run_dir.mkdir()
    (run_dir / "stats.json").write_text(json.dumps(_stats()))
    return build_report(run_dir)


def test_the_page_renders_its_charts_and_shows_the_json_numbers(report: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    data = json.loads((report / "mixture.json").read_text())
    mixture = data["mixtures"][0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            dialogs: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto((report / "index.html").as_uri(), wait_until="load")

            # Offline: the page asks for nothing but itself, and the hostile domain runs nothing.
            assert requests == [(report / "index.html").as_uri()]
            assert dialogs == [] and page.evaluate("window.pwned === undefined")

            charts = ["funnel-chart", "shares-chart", "tokens-chart", "languages-chart", "sources-chart"]
            charts += [f"quality-chart-{i}" for i in range(len(mixture["domains"]))]
            for chart in charts:
                box = page.locator(f"svg#{chart}").bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 30, chart
                assert page.locator(f"svg#{chart} rect.bar").count() > 0, chart

            # Bars are drawn to scale: planned and achieved bars of the tokens chart follow the numbers.
            bars = page.locator("svg#tokens-chart rect.bar")
            widths = [bars.nth(i).bounding_box()["width"] for i in range(bars.count())]  # type: ignore[index]
            assert len(widths) == 2 * len(mixture["domains"])
            web_planned, web_achieved, code_planned, code_achieved = widths[:4]
            assert code_achieved / code_planned == pytest.approx(17_000 / 18_000, rel=0.003)
            assert code_planned / web_planned == pytest.approx(18_000 / 20_000, rel=0.003)
            assert web_achieved / code_achieved == pytest.approx(20_100 / 17_000, rel=0.003)

            rows = page.locator("table#domains tbody tr")
            assert rows.count() == len(mixture["domains"])
            for i, expected in enumerate(mixture["domains"]):
                row = rows.nth(i)
                assert row.get_attribute("data-domain") == expected["domain"]
                assert row.locator("td.name").inner_text() == expected["domain"]  # shown as text, escaped
                shown = {
                    key: row.locator(f"td[data-{key}]").inner_text()
                    for key in (
                        "documents-before",
                        "tokens-before",
                        "planned-tokens",
                        "achieved-tokens",
                        "ratio",
                    )
                }
                assert _number(shown["documents-before"]) == expected["documents_before"]
                assert _number(shown["tokens-before"]) == expected["tokens_before"]
                assert _number(shown["planned-tokens"]) == round(expected["planned_tokens"])
                assert _number(shown["achieved-tokens"]) == expected["achieved_tokens"]
                if expected["ratio"] is None:
                    assert shown["ratio"] == "–"
                else:
                    assert _number(shown["ratio"]) == pytest.approx(expected["ratio"], abs=5e-5)
                assert ("off" in (row.get_attribute("class") or "")) == (not expected["on_plan"])
            # The row off plan (code: 17,000 of 18,000) is visibly highlighted.
            colours = [
                rows.nth(i).locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
                for i in range(rows.count())
            ]
            off = [not d["on_plan"] for d in mixture["domains"]]
            assert off == [False, True, False]
            assert colours[1] != colours[0] and colours[0] == colours[2]
        finally:
            browser.close()
