"""The funnel's legend never gives two series one colour: up to 24 drop reasons each get their own, and past
the palette the smallest are grouped into one "other" series instead of reusing a colour."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from corpusmill.mixtures.charts import DROP_PALETTE, distinct_colors, other_color
from corpusmill.mixtures.report import build_report
from corpusmill.mixtures.report_html import KEPT, SKIP_PALETTE

_KEY = re.compile(r'<span class="key" data-key="([^"]*)"><span class="swatch" style="background:([^"]+)">')
_FUNNEL = re.compile(r'<svg id="funnel-chart".*?</svg>', re.S)
_BAR = re.compile(r'<rect class="bar"[^>]* fill="([^"]+)"[^>]*><title>([^<]*)</title>')


def _run(tmp_path: Path, reasons: int) -> Path:
    """A run whose one filter stage dropped for `reasons` reasons (reason k dropped k + 1 documents)."""
    dropped = {f"dropped.reason_{k:02d}": k + 1 for k in range(reasons)}
    total = sum(dropped.values())
    stats = {
        "recipe": "many-reasons",
        "documents_out": 1000,
        "tokens_written": 0,
        "stages": [
            {
                "label": "00-read",
                "counters": {"docs_out": 1000 + total, "skipped.bad_json": 3, "skipped.too_large": 2},
            },
            {"label": "01-filter_v1", "counters": {"docs_in": 1000 + total, "docs_out": 1000, **dropped}},
        ],
    }
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "stats.json").write_text(json.dumps(stats))
    return run_dir


def _legend(page: str) -> dict[str, str]:
    return {html.unescape(name): fill.lower() for name, fill in _KEY.findall(page)}


def _funnel_fills(page: str) -> dict[str, set[str]]:
    """The colours of the funnel chart's bars, by the series each bar piece says it is."""
    chart = _FUNNEL.search(page)
    assert chart
    fills: dict[str, set[str]] = {}
    for fill, title in _BAR.findall(chart.group(0)):
        series = html.unescape(title).split(": ", 1)[1].rsplit(" ", 1)[0]  # "<stage>: <series> <count>"
        fills.setdefault(series, set()).add(fill.lower())
    return fills


def test_sixteen_drop_reasons_get_sixteen_distinct_colours(tmp_path: Path) -> None:
    page = (build_report(_run(tmp_path, 16)) / "index.html").read_text()
    legend = _legend(page)
    drops = {name: fill for name, fill in legend.items() if name.startswith("dropped: ")}
    assert len(drops) == 16 and len(set(drops.values())) == 16
    assert len(set(legend.values())) == len(
        legend
    )  # no colour twice in the legend: kept, skips, drops, added
    assert KEPT.lower() not in drops.values()
    fills = _funnel_fills(page)
    for name, fill in legend.items():
        if name in fills:
            assert fills[name] == {fill}, name  # each bar piece in its legend colour


def test_past_the_palette_the_smallest_reasons_are_grouped_not_recoloured(tmp_path: Path) -> None:
    reasons = len(DROP_PALETTE) + 6
    page = (build_report(_run(tmp_path, reasons)) / "index.html").read_text()
    legend = _legend(page)
    drops = {name: fill for name, fill in legend.items() if name.startswith("dropped: ")}
    other = "dropped: other (7 reasons)"
    assert len(drops) == len(DROP_PALETTE) and drops[other] == other_color(DROP_PALETTE).lower()
    assert len(set(legend.values())) == len(legend)
    assert {f"dropped: reason_{k:02d}" for k in range(7)} & set(drops) == set()  # the 7 smallest
    assert f"dropped: reason_{reasons - 1:02d}" in drops
    assert _funnel_fills(page)[other] == {other_color(DROP_PALETTE).lower()}
    table = page[page.index('<table id="funnel">') :]
    assert all(f'data-reason="reason_{k:02d}"' in table for k in range(reasons))  # the table lists them all


@pytest.mark.parametrize("palette", [DROP_PALETTE, SKIP_PALETTE])
def test_palettes_are_distinct_and_apart(palette: tuple[str, ...]) -> None:
    assert len({c.lower() for c in palette}) == len(palette)
    assert not {c.lower() for c in DROP_PALETTE} & {c.lower() for c in SKIP_PALETTE}
    assert len(DROP_PALETTE) >= 24


def test_distinct_colors_keep_a_name_s_colour_by_name_order() -> None:
    colors, grouped = distinct_colors({"b": 1, "a": 50, "c": 2}, ("x", "y", "z"))
    assert (colors, grouped) == ({"a": "x", "b": "y", "c": "z"}, [])
    colors, grouped = distinct_colors({"b": 1, "a": 50, "c": 2, "d": 1}, ("x", "y", "z"))
    assert (colors, grouped) == ({"a": "x", "c": "y"}, ["b", "d"])
    assert other_color(("x", "y", "z")) == "z" and "z" not in colors.values()
