"""The pages as an operator's console, without Ray: logging in with the token, the session cookie, CSRF, each
action form doing what the API would (and nothing without a session and its CSRF token), and what the run,
recipe and schedules pages show. A fake Jobs API stands in for the cluster."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from servicekit import TOKEN, RecordingJobs, pages_app

from corpusmill.service import pages
from corpusmill.service.jobs import JobNotFound
from corpusmill.service.recipes import register_recipe
from corpusmill.service.runs import RECIPE_FILE
from corpusmill.service.session import SESSION_COOKIE
from corpusmill.service.store import CANCELLED, FAILED, PENDING, SUCCEEDED, Run

UTC = dt.UTC
NOW = dt.datetime(2031, 1, 1, 12, tzinfo=UTC)
RECIPE = "name: {name}\ninput: {{paths: [/x/*.jsonl]}}\nstages: [tokenize]\n"


class StoppableJobs(RecordingJobs):
    """The fake Jobs API, which also forgets jobs when asked to stop them (so a cancel ends the run at once)."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped: list[str] = []

    def stop(self, job_id: str) -> None:
        self.stopped.append(job_id)
        raise JobNotFound(job_id)


class Console:
    """An app with the pages over a real store, and a browser-like client (it keeps cookies)."""

    def __init__(self, tmp_path: Path) -> None:
        self.jobs = StoppableJobs()
        built = pages_app(tmp_path, self.jobs, NOW)
        self.settings, self.store, self.manager, self.scheduler = (
            built.settings,
            built.store,
            built.manager,
            built.scheduler,
        )
        self.client = TestClient(built.app, follow_redirects=False)

    def recipe(self, name: str = "r", text: str | None = None) -> None:
        register_recipe(self.store, text or RECIPE.format(name=name), NOW)

    def login(self) -> str:
        """Log in; the CSRF token of the new session."""
        response = self.client.post("/login", data={"token": TOKEN, "next": "/runs"})
        assert response.status_code == 303, response.text
        return self.csrf()

    def csrf(self, page: str = "/runs") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.client.get(page).text)
        assert found, "no action form on the page"
        return found.group(1)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    c = Console(tmp_path)
    with c.client:
        yield c


def test_logging_in_sets_a_signed_httponly_strict_cookie_and_never_the_token(console: Console) -> None:
    page = console.client.get("/login?next=/schedules")
    assert page.status_code == 200 and 'name="token"' in page.text and 'type="password"' in page.text
    wrong = console.client.post("/login", data={"token": "not-it", "next": "/runs"})
    assert wrong.status_code == 403 and "set-cookie" not in wrong.headers
    assert SESSION_COOKIE not in console.client.cookies
    right = console.client.post("/login", data={"token": TOKEN, "next": "/schedules"})
    assert right.status_code == 303 and right.headers["location"] == "/schedules"
    cookie = next(c for c in right.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert TOKEN not in cookie and TOKEN not in console.client.cookies[SESSION_COOKIE]
    assert "Logged in." in console.client.get("/schedules").text  # the flash, once
    assert "Logged in." not in console.client.get("/schedules").text
    assert 'action="/logout"' in console.client.get("/runs").text


def test_a_login_only_redirects_inside_the_site(console: Console) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = console.client.post("/login", data={"token": TOKEN, "next": target})
        assert response.headers["location"] == "/runs", target


def test_a_forged_or_foreign_session_is_no_session(console: Console, tmp_path: Path) -> None:
    console.client.cookies.set(SESSION_COOKIE, "1999999999.abc.deadbeef")
    assert 'action="/logout"' not in console.client.get("/runs").text
    # A session of another service process (another signing secret) does not carry over.
    console.client.cookies.clear()
    console.login()
    value = console.client.cookies[SESSION_COOKIE]
    (tmp_path / "other").mkdir()
    other = Console(tmp_path / "other")
    other.client.cookies.set(SESSION_COOKIE, value)
    assert 'action="/logout"' not in other.client.get("/runs").text


def _state(console: Console) -> tuple[object, ...]:
    return (
        [(r.id, r.status) for r in console.store.runs()],
        [(s.id, s.paused) for s in console.store.schedules()],
        console.store.recipe_names(),
        list(console.jobs.entrypoints),
        list(console.jobs.stopped),
    )


def test_no_action_works_without_a_session_and_its_csrf_token(console: Console) -> None:
    console.recipe("r")
    console.recipe("unused")
    run = console.manager.trigger(console.store.recipe("r"))
    schedule = console.scheduler.add("r", None, "0 * * * *")
    actions = [
        f"/runs/{run.id}/cancel",
        f"/runs/{run.id}/rerun",
        "/recipes/r/versions/1/run",
        f"/schedules/{schedule.id}/pause",
        f"/schedules/{schedule.id}/resume",
        "/recipes/unused/delete",
        "/logout",
    ]
    before = _state(console)
    for path in actions:  # no session at all, with or without a CSRF field
        for data in ({}, {"csrf": "x"}):
            response = console.client.post(path, data=data)
            assert response.status_code == 403, path
            assert "Not allowed" in response.text
    csrf = console.login()
    for path in actions:  # a session, but a wrong or missing CSRF token (what another site's form would send)
        for data in ({}, {"csrf": ""}, {"csrf": csrf[:-1] + ("0" if csrf[-1] != "0" else "1")}):
            assert console.client.post(path, data=data).status_code == 403, path
    # The right CSRF token without the session cookie is refused too.
    console.client.cookies.clear()
    for path in actions:
        assert console.client.post(path, data={"csrf": csrf}).status_code == 403, path
    assert _state(console) == before


def test_logged_in_actions_do_what_the_api_does(console: Console) -> None:
    console.recipe("r")
    schedule = console.scheduler.add("r", None, "0 * * * *")
    csrf = console.login()

    started = console.client.post("/recipes/r/versions/1/run", data={"csrf": csrf})
    assert started.status_code == 303
    run_id = int(started.headers["location"].rsplit("/", 1)[1])
    run = console.store.run(run_id)
    assert run is not None and run.status == PENDING and run.ray_job_id in console.jobs.entrypoints
    page = console.client.get(f"/runs/{run_id}").text
    assert f"Run #{run_id} of r v1 started." in page and 'id="cancel-form"' in page

    cancelled = console.client.post(f"/runs/{run_id}/cancel", data={"csrf": csrf})
    assert cancelled.status_code == 303 and console.store.run(run_id).status == CANCELLED
    assert console.jobs.stopped == [run.ray_job_id]
    again = console.client.post(f"/runs/{run_id}/cancel", data={"csrf": csrf})
    assert "Not cancelled" in console.client.get(again.headers["location"]).text

    rerun = console.client.post(f"/runs/{run_id}/rerun", data={"csrf": csrf})
    rerun_id = int(rerun.headers["location"].rsplit("/", 1)[1])
    assert rerun_id != run_id and console.store.run(rerun_id).version == 1

    assert console.client.post(f"/schedules/{schedule.id}/pause", data={"csrf": csrf}).status_code == 303
    assert console.store.schedule(schedule.id).paused
    page = console.client.get("/schedules").text
    assert f"Schedule #{schedule.id} paused." in page and f'id="resume-{schedule.id}"' in page
    console.client.post(f"/schedules/{schedule.id}/resume", data={"csrf": csrf})
    assert not console.store.schedule(schedule.id).paused

    # A recipe a schedule uses is not deleted; one nothing uses is.
    refused = console.client.post("/recipes/r/delete", data={"csrf": csrf})
    assert "Not deleted" in console.client.get(refused.headers["location"]).text
    assert console.store.recipe("r") is not None
    console.recipe("spare")
    deleted = console.client.post("/recipes/spare/delete", data={"csrf": csrf})
    assert deleted.headers["location"] == "/recipes" and console.store.recipe("spare") is None

    logout = console.client.post("/logout", data={"csrf": csrf})
    assert logout.status_code == 303
    assert 'action="/logout"' not in console.client.get("/runs").text
    assert console.client.post(f"/schedules/{schedule.id}/pause", data={"csrf": csrf}).status_code == 403


def test_pages_show_action_buttons_only_when_logged_in(console: Console) -> None:
    console.recipe("r")
    run = console.manager.trigger(console.store.recipe("r"))
    console.scheduler.add("r", None, "0 * * * *")
    pages = ["/recipes/r", f"/runs/{run.id}", "/schedules"]
    for path in pages:
        page = console.client.get(path)
        assert page.status_code == 200 and 'method="post"' not in page.text, path
    console.login()
    for path in pages:
        assert 'name="csrf"' in console.client.get(path).text, path


def _finished_run(console: Console, status: str, steps: list[dict], files: dict[str, object]) -> Run:
    console.recipe("r")
    run = console.manager.trigger(console.store.recipe("r"))
    run_dir = Path(run.run_dir)
    for name, content in files.items():
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_text(content if isinstance(content, str) else json.dumps(content))
    console.store.update_run(
        run.id,
        status=status,
        started_at=NOW - dt.timedelta(minutes=3, seconds=5),
        finished_at=NOW,
        progress={"steps": steps},
        error="error: it broke\n\nRay job FAILED (exit code 1): x" if status == FAILED else None,
    )
    return console.store.run(run.id)


STATS = {
    "documents_out": 90,
    "tokens_written": 12345,
    "stages": [
        {"label": "00-read", "counters": {"docs_out": 100, "skipped.warc_request": 7}},
        {"label": "01-filter_v1", "counters": {"docs_in": 100, "docs_out": 90, "dropped.too_short": 10}},
    ],
}
SHA = "ab" * 32


def test_the_run_page_says_how_it_went(console: Console) -> None:
    steps = [
        {"step": "01-filter_v1", "state": "done", "parts_done": 2, "stages": []},
    ]
    mixture = {
        "mixtures": [],
        "warnings": [{"stage": "02-mix", "kind": "plan", "message": "5 domains empty"}],
    }
    run = _finished_run(
        console,
        SUCCEEDED,
        steps,
        {
            "stats.json": STATS,
            "parts.json": [{"name": "part-00000"}, {"name": "part-00001"}],
            "manifest.json": {"files": [{"path": "shards/a.bin", "bytes": 3, "sha256": SHA}]},
            "report/mixture.json": mixture,
            "report/index.html": "<html></html>",
        },
    )
    page = console.client.get(f"/runs/{run.id}").text
    assert "status-WARNED" in page and "SUCCEEDED WITH WARNINGS" in page and "5 domains empty" in page
    assert '<dd id="duration">3 min 05 s</dd>' in page
    assert '<dd id="documents-read">100</dd>' in page and '<dd id="tokens-written">12,345</dd>' in page
    assert 'data-reason="too_short"' in page and 'data-count="10"' in page
    assert 'data-reason="warc_request"' in page and "skipped while reading" in page
    assert SHA in page  # the whole checksum
    assert "2 of 2" in page
    for name in ("manifest.json", "stats.json", RECIPE_FILE):
        assert f'/api/runs/{run.id}/artifacts/{name}"' in page, name
    assert f"/api/runs/{run.id}/logs" in page and f"/runs/{run.id}/report/" in page


def test_the_run_page_lists_every_artifact_a_page_at_a_time(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "MAX_ARTIFACT_ROWS", 2)
    files = [{"path": f"shards/{n}.bin", "bytes": n, "sha256": f"{n:064x}"} for n in range(5)]
    run = _finished_run(console, SUCCEEDED, [], {"manifest.json": {"files": files}})
    seen = []
    url = f"/runs/{run.id}"
    for _ in range(3):
        page = console.client.get(url).text
        seen += re.findall(r'<code class="sha">([0-9a-f]{64})</code>', page)
        following = re.search(r'id="artifacts-next" href="([^"]+)"', page)
        if following is None:
            break
        url = html.unescape(following.group(1)).split("#")[0]
    assert seen == [f["sha256"] for f in files]  # each once, in order
    assert "Files 5 to 5 of 5" in " ".join(page.split()) and 'id="artifacts-previous"' in page
    assert console.client.get(f"/runs/{run.id}?files_from=-1").status_code == 422


def test_a_failed_run_names_the_step_it_stopped_in(console: Console) -> None:
    steps = [
        {"step": "01-a", "state": "done", "parts_done": 1, "stages": []},
        {"step": "02-b", "state": "started", "parts_done": 0, "stages": []},
        {"step": "03-c", "state": "waiting", "parts_done": 0, "stages": []},
    ]
    run = _finished_run(console, FAILED, steps, {})
    page = console.client.get(f"/runs/{run.id}").text
    assert '<dd id="stopped-in"><code>02-b</code></dd>' in page
    assert 'data-state="failed"' in page and 'data-state="not reached"' in page
    assert 'data-state="waiting"' not in page
    # The cause alone on top; Ray's message folded below it.
    assert '<pre class="error" id="run-error">error: it broke</pre>' in page
    assert page.index("Ray job FAILED") > page.index('<details id="run-error-details">')


def test_the_run_page_compares_with_the_previous_run_of_its_schedule(console: Console) -> None:
    console.recipe("r")
    schedule = console.scheduler.add("r", None, "0 * * * *")
    runs = []
    for tokens in (100, 150):
        fired = console.scheduler.tick(console.store.schedule(schedule.id).next_run_at)
        run = fired[0]
        mixture = {
            "mixtures": [
                {
                    "stage": "02-mix",
                    "achieved_tokens": tokens,
                    "domains": [{"domain": "news", "achieved_tokens": tokens, "share_after": 1.0}],
                }
            ],
            "warnings": [],
        }
        report = Path(run.run_dir) / "report"
        report.mkdir(parents=True)
        (report / "mixture.json").write_text(json.dumps(mixture))
        console.store.update_run(run.id, status=SUCCEEDED, finished_at=NOW)
        runs.append(run)
    page = console.client.get(f"/runs/{runs[1].id}").text
    assert f'id="previous-link" href="/runs/{runs[0].id}"' in page
    assert 'data-domain="news"' in page and "+50" in page
    assert f"/api/mixture-diff?before={runs[0].id}&amp;after={runs[1].id}" in page


def test_the_recipe_page_shows_versions_their_diff_and_runs(console: Console) -> None:
    console.recipe("r")
    console.recipe("r", RECIPE.format(name="r").replace("[tokenize]", "[dedup_exact, tokenize]"))
    run = console.manager.trigger(console.store.recipe("r", 1))
    listing = console.client.get("/recipes").text
    assert 'href="/recipes/r"' in listing
    page = console.client.get("/recipes/r").text
    assert 'id="v2"' in page and 'id="v1"' in page
    assert "-stages: [tokenize]" in page and "+stages: [dedup_exact, tokenize]" in page
    # What jobs run, as the API's `normalized` gives it: the stage versions resolved.
    normalized = re.search(r'<pre class="yaml normalized" id="normalized-v2">(.*?)</pre>', page, re.S)
    assert normalized and html.unescape(normalized.group(1)) == console.store.recipe("r", 2).normalized
    assert "dedup_exact_v" in normalized.group(1)
    assert f'href="/runs/{run.id}"' in page.split('id="v1"')[1]
    assert console.client.get("/recipes/nothing").status_code == 404


def test_the_schedules_page_shows_each_schedules_policies(console: Console) -> None:
    console.recipe("r")
    schedule = console.scheduler.add("r", None, "0 * * * *")
    page = console.client.get("/schedules").text
    assert (
        f'<tr data-schedule-id="{schedule.id}">' in page and '<td class="cron"><code>0 * * * *</code>' in page
    )
    timezone = getattr(schedule, "timezone", None) or "UTC"
    assert f"<td>{timezone}</td>" in page
    if getattr(schedule, "overlap", None):  # the fields of schedules with policies
        assert f'data-overlap="{schedule.overlap}"' in page and "skip the tick" in page
        assert f'data-catch-up="{schedule.catch_up}"' in page and "one run for the missed ticks" in page


def test_run_page_counts_records_that_are_not_documents_apart_from_drops() -> None:
    from corpusmill.pipelines.summary import RunSummary, StageSummary
    from corpusmill.service.run_view import _drops, _not_documents

    read = StageSummary(
        "00-read",
        40,
        30,
        skipped={"skipped_record_type.request": 6, "skipped_record_type.metadata": 3, "truncated_record": 1},
        reads_input=True,
    )
    extract = StageSummary("01-extract", 30, 28, dropped={"extract_empty": 2})
    summary = RunSummary(stages=[read, extract], documents_out=28, tokens_written=1000)
    assert [(d.stage, d.reason, d.count) for d in _drops(summary)] == [
        ("00-read", "truncated_record", 1),
        ("01-extract", "extract_empty", 2),
    ]
    assert _not_documents(summary) == {"request": 6, "metadata": 3}
