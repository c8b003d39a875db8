"""The pages that do what the API does beyond the page actions, without Ray: registering a recipe from the
form (pasted or uploaded, CSRF-checked, problems shown with the text kept), the runs list's filters and pages,
comparing any two runs' mixtures, and a run's logs as a page. A fake Jobs API stands in for the cluster, and
the app has the service's size limit and error handlers, as the real one does."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from servicekit import TOKEN, RecordingJobs, pages_app

from corpusmill.service.jobs import JobNotFound
from corpusmill.service.recipes import register_recipe
from corpusmill.service.settings import ServiceSettings
from corpusmill.service.store import FAILED, SUCCEEDED, Run

NOW = dt.datetime(2031, 1, 1, 12, tzinfo=dt.UTC)
RECIPE = "name: {name}\ninput: {{paths: [/x/*.jsonl]}}\nstages: [tokenize]\n"
LIMIT_BYTES = 4096


class LogJobs(RecordingJobs):
    """The fake Jobs API, whose logs are whatever the test sets (or the error it sets)."""

    def __init__(self) -> None:
        super().__init__()
        self.log_text = ""
        self.log_error: Exception | None = None

    def logs(self, job_id: str) -> str:
        if self.log_error is not None:
            raise self.log_error
        return self.log_text


class Pages:
    """The pages over a real store, behind the service's size limit, with a browser-like client."""

    def __init__(self, tmp_path: Path) -> None:
        self.jobs = LogJobs()
        settings = ServiceSettings(data_dir=tmp_path, api_token=TOKEN, max_request_bytes=LIMIT_BYTES)
        built = pages_app(tmp_path, self.jobs, NOW, settings, api_errors=True)
        self.settings, self.store, self.manager = built.settings, built.store, built.manager
        self.client = TestClient(built.app, follow_redirects=False)

    def login(self) -> str:
        """Log in; the CSRF token of the new session, as the register form carries it."""
        assert self.client.post("/login", data={"token": TOKEN, "next": "/runs"}).status_code == 303
        found = re.search(r'name="csrf" value="([^"]+)"', self.client.get("/recipes/-/new").text)
        assert found, "no register form"
        return found.group(1)

    def register(self, name: str = "r", text: str | None = None) -> None:
        register_recipe(self.store, text or RECIPE.format(name=name), NOW)

    def run(self, name: str = "r", status: str = SUCCEEDED, mixture: dict | None = None) -> Run:
        """A run of the newest version of `name`, ended in `status`, with `mixture` as its report."""
        recipe = self.store.recipe(name)
        if recipe is None:
            self.register(name)
            recipe = self.store.recipe(name)
        run = self.manager.trigger(recipe)
        if mixture is not None:
            report = Path(run.run_dir) / "report"
            report.mkdir(parents=True, exist_ok=True)
            (report / "mixture.json").write_text(json.dumps(mixture))
        self.store.update_run(run.id, status=status, finished_at=NOW)
        return self.store.run(run.id)

    def flash(self, response: httpx.Response) -> str:
        """The flash message the page after a 303 shows."""
        assert response.status_code == 303, response.text
        found = re.search(r'id="flash"[^>]*>([^<]*)<', self.client.get(response.headers["location"]).text)
        assert found, "no flash"
        return html.unescape(found.group(1))


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[Pages]:
    p = Pages(tmp_path)
    with p.client:
        yield p


def _textarea(page: str) -> str:
    found = re.search(r'<textarea id="recipe-yaml"[^>]*>\n(.*?)</textarea>', page, re.S)
    assert found, "no textarea"
    return html.unescape(found.group(1))


# Registering a recipe


def test_registering_from_the_textarea_makes_a_version_only_when_the_recipe_changed(pages: Pages) -> None:
    csrf = pages.login()
    text = RECIPE.format(name="r").replace("\n", "\r\n")  # as a browser sends a textarea
    first = pages.client.post("/recipes/-/new", data={"csrf": csrf, "yaml": text})
    assert first.headers["location"] == "/recipes/r"
    assert pages.flash(first) == "Recipe r v1 registered."
    stored = pages.store.recipe("r")
    assert stored is not None and stored.version == 1 and "\r" not in stored.yaml

    again = pages.client.post("/recipes/-/new", data={"csrf": csrf, "yaml": text})
    assert pages.flash(again) == "Recipe r unchanged (same as v1)."
    assert [v.version for v in pages.store.recipe_versions("r")] == [1]

    changed = text.replace("[tokenize]", "[dedup_exact, tokenize]")
    assert pages.flash(pages.client.post("/recipes/-/new", data={"csrf": csrf, "yaml": changed})) == (
        "Recipe r v2 registered."
    )
    assert [v.version for v in pages.store.recipe_versions("r")] == [1, 2]


def test_an_invalid_recipe_comes_back_with_every_problem_and_the_text_as_typed(pages: Pages) -> None:
    csrf = pages.login()
    text = "# <script>alert(1)</script>\nname: bad\ninput: {paths: [rel/a.jsonl, rel/b.jsonl]}\nstages: [tokenize]\n"
    response = pages.client.post("/recipes/-/new", data={"csrf": csrf, "yaml": text})
    assert response.status_code == 422
    assert "<script>alert" not in response.text and _textarea(response.text) == text
    problems = re.findall(r"<li><code>(.*?)</code></li>", response.text, re.S)
    assert len(problems) == 2 and all("relative path" in html.unescape(p) for p in problems)
    assert "input.paths[0]" in problems[0] and "input.paths[1]" in problems[1]
    assert pages.store.recipe("bad") is None

    for body in ("name: [unclosed", "", "   \n"):
        response = pages.client.post("/recipes/-/new", data={"csrf": csrf, "yaml": body})
        assert response.status_code == 422 and 'id="recipe-problems"' in response.text, body
    assert pages.store.recipe_names() == []


def test_a_recipe_file_can_be_uploaded_instead(pages: Pages) -> None:
    csrf = pages.login()
    form = pages.client.get("/recipes/-/new").text
    assert 'enctype="multipart/form-data"' in form and 'type="file" id="recipe-file" name="file"' in form
    upload = ("\ufeff" + RECIPE.format(name="up").replace("\n", "\r\n")).encode()
    response = pages.client.post(
        "/recipes/-/new",
        data={"csrf": csrf, "yaml": "ignored: the file wins"},
        files={"file": ("up.yaml", upload, "application/x-yaml")},
    )
    assert pages.flash(response) == "Recipe up v1 registered."
    assert pages.store.recipe("up").yaml == RECIPE.format(name="up")

    # A multipart form with no file chosen takes the textarea.
    response = pages.client.post(
        "/recipes/-/new",
        data={"csrf": csrf, "yaml": RECIPE.format(name="typed")},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert pages.flash(response) == "Recipe typed v1 registered."

    bad = b"name: latin\n# caf\xe9\ninput: {paths: [/x/*.jsonl]}\nstages: [tokenize]\n"
    response = pages.client.post(
        "/recipes/-/new", data={"csrf": csrf}, files={"file": ("latin.yaml", bad, "text/yaml")}
    )
    assert response.status_code == 422
    assert "is not UTF-8 text (byte 0xe9 on line 2)" in html.unescape(response.text)
    assert "name: latin" in _textarea(response.text) and pages.store.recipe("latin") is None


def test_nothing_is_registered_without_a_session_and_its_csrf_token(pages: Pages) -> None:
    page = pages.client.get("/recipes/-/new")
    assert page.status_code == 200 and 'method="post"' not in page.text and 'id="recipe-login"' in page.text
    text = RECIPE.format(name="r")
    for data in ({"yaml": text}, {"yaml": text, "csrf": "forged"}):
        assert pages.client.post("/recipes/-/new", data=data).status_code == 403
    csrf = pages.login()
    wrong = csrf[:-1] + ("0" if csrf[-1] != "0" else "1")
    for data in ({"yaml": text}, {"yaml": text, "csrf": ""}, {"yaml": text, "csrf": wrong}):
        assert pages.client.post("/recipes/-/new", data=data).status_code == 403
        files = {"file": ("r.yaml", text.encode(), "application/x-yaml")}
        assert pages.client.post("/recipes/-/new", data=data, files=files).status_code == 403
    not_multipart = pages.client.post(
        "/recipes/-/new",
        content=f"csrf={csrf}".encode(),
        headers={"content-type": "multipart/form-data; boundary=nothere"},
    )
    assert not_multipart.status_code == 403
    pages.client.cookies.clear()
    assert pages.client.post("/recipes/-/new", data={"yaml": text, "csrf": csrf}).status_code == 403
    assert pages.store.recipe_names() == []


def test_a_body_over_the_limit_is_refused_and_nothing_is_stored(pages: Pages) -> None:
    csrf = pages.login()
    text = RECIPE.format(name="big") + "#" * LIMIT_BYTES + "\n"
    declared = pages.client.post("/recipes/-/new", data={"csrf": csrf, "yaml": text})
    # The size limit answers before the page sees the body: a short page for a page address, not API JSON.
    assert declared.status_code == 413 and declared.headers["content-type"].startswith("text/html")
    assert "larger than this service accepts" in declared.text and 'href="/recipes"' in declared.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts as the body streams
        yield f"csrf={csrf}&yaml=".encode()
        for _ in range(4):
            yield b"#" * 2048

    streamed = pages.client.post(
        "/recipes/-/new", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert streamed.status_code == 413 and 'id="recipe-problems"' in streamed.text
    assert "4,096 bytes" in streamed.text
    assert pages.store.recipe_names() == []


def test_the_form_can_start_from_a_recipes_newest_version(pages: Pages) -> None:
    pages.register("r")
    newer = RECIPE.format(name="r").replace("[tokenize]", "[dedup_exact, tokenize]")
    pages.register("r", newer)
    pages.login()
    page = pages.client.get("/recipes/r").text
    assert 'id="new-version-link" href="/recipes/-/new?from=r"' in page
    assert 'id="register-recipe-link" href="/recipes/-/new"' in pages.client.get("/recipes").text
    form = pages.client.get("/recipes/-/new?from=r")
    assert form.status_code == 200 and _textarea(form.text) == newer and 'id="recipe-source"' in form.text
    missing = pages.client.get("/recipes/-/new?from=nothing")
    assert (
        missing.status_code == 404 and "There is no recipe" in missing.text and _textarea(missing.text) == ""
    )


# The runs list


def _ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-run-id="(\d+)"', page)]


def _older(page: str) -> str | None:
    found = re.search(r'id="older-runs" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def _all_pages(pages: Pages, first: str) -> list[int]:
    seen, address = [], first
    while address:
        page = pages.client.get(address)
        assert page.status_code == 200, page.text
        seen += _ids(page.text)
        address = _older(page.text)
    return seen


def test_the_runs_list_filters_by_status_and_recipe(pages: Pages) -> None:
    a_ok, a_failed = pages.run("a"), pages.run("a", FAILED)
    b_ok = pages.run("b")
    page = pages.client.get("/runs").text
    assert _ids(page) == [b_ok.id, a_failed.id, a_ok.id]
    assert '<option value="FAILED">' in page and '<option value="b">' in page
    assert _ids(pages.client.get("/runs?status=SUCCEEDED").text) == [b_ok.id, a_ok.id]
    assert _ids(pages.client.get("/runs?status=failed").text) == [a_failed.id]
    assert _ids(pages.client.get("/runs?recipe=a").text) == [a_failed.id, a_ok.id]
    both = pages.client.get("/runs?status=SUCCEEDED&recipe=a").text
    assert _ids(both) == [a_ok.id] and '<option value="a" selected>' in both
    none = pages.client.get("/runs?status=RUNNING&recipe=b").text
    assert _ids(none) == [] and 'id="no-runs"' in none


def test_the_runs_list_pages_through_every_run_once(pages: Pages) -> None:
    runs = [pages.run("a" if i % 3 else "b", FAILED if i % 2 else SUCCEEDED) for i in range(8)]
    newest_first = sorted((r.id for r in runs), reverse=True)
    assert _all_pages(pages, "/runs?limit=3") == newest_first
    failed = sorted((r.id for r in runs if r.status == FAILED), reverse=True)
    assert _all_pages(pages, "/runs?status=FAILED&limit=2") == failed
    second = pages.client.get(_older(pages.client.get("/runs?limit=3").text)).text
    assert 'id="newest-runs" href="/runs?limit=3"' in second
    # A run added while paging does not shift the older pages.
    address = _older(pages.client.get("/runs?limit=4").text)
    pages.run("a")
    assert _ids(pages.client.get(address).text) == newest_first[4:]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("status=DONE", "is not a run status"),
        ("cursor=bm90LW91cnM", "not one this service made"),
        ("cursor=%%%", "not one this service made"),
        ("limit=0", "is not a page size"),
        ("limit=many", "is not a page size"),
    ],
)
def test_a_bad_runs_query_gets_a_message(pages: Pages, query: str, says: str) -> None:
    pages.run("a")
    page = pages.client.get(f"/runs?{query}")
    assert page.status_code == 422 and says in html.unescape(page.text) and 'id="runs-filters"' in page.text


# Comparing two runs


def _mixture(domains: dict[str, int]) -> dict:
    total = sum(domains.values())
    rows = [{"domain": d, "achieved_tokens": t, "share_after": t / total} for d, t in domains.items()]
    return {"mixtures": [{"stage": "02-mix", "achieved_tokens": total, "domains": rows}], "warnings": []}


def test_any_two_runs_can_be_compared(pages: Pages) -> None:
    before = pages.run("a", mixture=_mixture({"news": 100, "code": 100}))
    pages.run("a", FAILED)
    after = pages.run("b", mixture=_mixture({"news": 150, "web": 50}))
    run_page = pages.client.get(f"/runs/{after.id}").text
    assert 'id="compare-form"' in run_page and f'name="after" value="{after.id}"' in run_page
    page = pages.client.get(f"/compare?before={before.id}&after={after.id}")
    assert page.status_code == 200
    assert re.search(r'<tr data-domain="news">.*?data-delta-tokens="50"', page.text, re.S)
    assert re.search(r'<tr data-domain="code">.*?data-delta-tokens="-100"', page.text, re.S)
    assert re.search(r'<tr data-domain="web">.*?data-delta-tokens="50"', page.text, re.S)
    assert f"/api/mixture-diff?before={before.id}&amp;after={after.id}" in page.text
    empty = pages.client.get("/compare")
    assert empty.status_code == 200 and 'id="compare-form"' in empty.text


def test_comparing_says_why_it_cannot(pages: Pages) -> None:
    with_report = pages.run("a", mixture=_mixture({"news": 10}))
    no_report = pages.run("a", FAILED)
    no_mix = pages.run("a", mixture={"mixtures": [], "warnings": []})
    cases = [
        (f"before={no_report.id}&after={with_report.id}", 404, f"Run #{no_report.id} has no mixture report"),
        (f"before={with_report.id}&after={no_mix.id}", 409, "Nothing to compare"),
        (f"before=999&after={with_report.id}", 404, "There is no run #999"),
        (f"before=x&after={with_report.id}", 422, "is not a run number"),
        (f"before={with_report.id}", 422, "is not a run number"),
    ]
    for query, code, says in cases:
        page = pages.client.get(f"/compare?{query}")
        assert page.status_code == code and says in html.unescape(page.text), query
        assert 'id="compare-error"' in page.text


# A run's logs


def test_the_logs_page_shows_the_jobs_output_escaped_and_its_tail(pages: Pages) -> None:
    run = pages.run("a")
    assert f'id="logs-link" href="/runs/{run.id}/logs"' in pages.client.get(f"/runs/{run.id}").text
    pages.jobs.log_text = "starting\n<script>alert(1)</script>\ndone\n"
    page = pages.client.get(f"/runs/{run.id}/logs")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "All 3 lines" in page.text
    tail = pages.client.get(f"/runs/{run.id}/logs?tail=1").text
    assert re.search(r'<pre class="logs" id="logs">done</pre>', tail)

    pages.jobs.log_text = "".join(f"line {i}\n" for i in range(2500))
    page = pages.client.get(f"/runs/{run.id}/logs").text
    assert "The last 2,000 of 2,500 lines" in page and "line 499\n" not in page and "line 500\n" in page
    assert "line 0\n" in pages.client.get(f"/runs/{run.id}/logs?tail=0").text


def test_the_logs_page_says_when_ray_has_none_or_cannot_be_reached(pages: Pages) -> None:
    run = pages.run("a")
    pages.jobs.log_error = JobNotFound(run.ray_job_id)
    page = pages.client.get(f"/runs/{run.id}/logs")
    assert page.status_code == 404 and "Ray has no logs for run" in page.text
    pages.jobs.log_error = RuntimeError("connection refused")
    page = pages.client.get(f"/runs/{run.id}/logs")
    assert page.status_code == 502 and "Cannot reach Ray: connection refused" in page.text
    assert pages.client.get("/runs/999/logs").status_code == 404
    bad = pages.client.get(f"/runs/{run.id}/logs?tail=some")
    assert bad.status_code == 422 and "is not a number of lines" in html.unescape(bad.text)
