"""The report's sample pages served by the service: every page under report/samples/ and report/documents/,
and every relative link between them and the report page, resolves under /runs/{id}/report/."""

from __future__ import annotations

import html
import json
import posixpath
import re

import pytest
from servicekit import FinishedRun, ServiceHandle

from corpusmill.mixtures.report_html import RUN_NAV_SCRIPT

pytestmark = pytest.mark.ray

_LINK = re.compile(r'href="([^"#:]+\.html)"')  # relative page links (none has a scheme or a fragment)


def _links(page: str, at: str) -> set[str]:
    """The report-relative paths of the relative links on the page at report-relative path `at`."""
    here = posixpath.dirname(at)
    return {posixpath.normpath(posixpath.join(here, html.unescape(href))) for href in _LINK.findall(page)}


def test_sample_and_document_pages_are_served_with_their_links(
    service: ServiceHandle, finished_run: FinishedRun
) -> None:
    report = finished_run.run_dir / "report"
    samples = json.loads((report / "samples.json").read_text())
    base = f"/runs/{finished_run.id}/report/"
    assert service.get(f"{base}samples.json").json() == samples

    index = service.get(base)
    assert index.status_code == 200
    seen, todo = set(), sorted(p for p in _links(index.text, "index.html") if p != "index.html")
    assert any(p.startswith("samples/") for p in todo)
    # Follow links from the report page to sample pages, from those to document pages and back.
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        served = service.get(base + path)
        assert served.status_code == 200, path
        assert served.headers["content-type"].startswith("text/html"), path
        assert served.content == (report / path).read_bytes(), path
        todo.extend(sorted(_links(served.text, path) - seen))
    pages = {cell["page"] for cell in samples["cells"]} | {
        doc["page"] for cell in samples["cells"] for doc in cell["documents"]
    }
    assert pages <= seen and any(p.startswith("documents/") for p in seen)
    assert service.get(f"{base}documents/0000000000000000.html").status_code == 404


def test_every_report_page_leads_back_to_its_run(service: ServiceHandle, finished_run: FinishedRun) -> None:
    """The hidden link back, which the page's script points at /runs/{id} where the service serves it."""
    base = f"/runs/{finished_run.id}/report/"
    report = finished_run.run_dir / "report"
    sample = next(p.relative_to(report) for p in sorted((report / "samples").glob("*.html")))
    for path in ("", str(sample)):
        page = service.get(base + path)
        assert page.status_code == 200 and f"<script>{RUN_NAV_SCRIPT}</script>" in page.text, path
        found = re.match(r"^(.*/runs/(\d+))/report/", base + path)  # the script's own expression
        assert found and found.group(1) == f"/runs/{finished_run.id}", path
    run_page = service.get(f"/runs/{finished_run.id}")
    assert run_page.status_code == 200 and f"<h1>Run #{finished_run.id} " in run_page.text
