"""Schedules managed from the pages alone, without Ray: creating one from the schedules or recipe page,
changing and deleting it from its own page, a refused form drawn again with what was typed, and nothing
happening without a session and its CSRF token. The Console of test_service_page_actions stands in for the
service (real store, fake Jobs API, fixed clock)."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_service_page_actions import NOW, Console

from corpusmill.service.store import Schedule

UTC = dt.UTC
FORM = {
    "recipe": "r",
    "version": "",
    "cron": "0 3 * * *",
    "timezone": "Europe/Berlin",
    "incremental": "on",
    "overlap": "queue",
    "catch_up": "none",
    "webhook_url": "https://hooks.example/corpus",
}


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    c = Console(tmp_path)
    c.recipe("r")
    with c.client:
        yield c


def _schedule(console: Console, schedule_id: int) -> Schedule:
    found = console.store.schedule(schedule_id, include_deleted=True)
    assert found is not None
    return found


def _page(console: Console, path: str) -> str:
    response = console.client.get(path)
    assert response.status_code == 200, response.text
    return html.unescape(response.text)


def test_a_schedule_created_from_the_form_has_the_fields_typed(console: Console) -> None:
    csrf = console.login()
    assert 'id="new-schedule-form"' in _page(console, "/schedules")
    response = console.client.post("/schedules/new", data={"csrf": csrf, **FORM})
    assert response.status_code == 303, response.text
    (schedule,) = console.store.schedules()
    assert response.headers["location"] == f"/schedules/{schedule.id}"
    assert (schedule.recipe, schedule.version, schedule.cron, schedule.timezone) == (
        "r",
        None,
        "0 3 * * *",
        "Europe/Berlin",
    )
    assert schedule.incremental and not schedule.paused
    assert (schedule.overlap, schedule.catch_up, schedule.webhook_url) == (
        "queue",
        "none",
        FORM["webhook_url"],
    )
    assert schedule.next_run_at == dt.datetime(2031, 1, 2, 2, tzinfo=UTC)  # 03:00 in Berlin is 02:00 UTC
    assert f"Schedule #{schedule.id} created." in _page(console, response.headers["location"])

    # Pinned and paused, the optional fields left at their defaults (as the recipe page's form posts).
    pinned = console.client.post(
        "/schedules/new", data={"csrf": csrf, "recipe": "r", "version": "1", "cron": "@daily", "paused": "on"}
    )
    assert pinned.status_code == 303
    schedule = _schedule(console, int(pinned.headers["location"].rsplit("/", 1)[1]))
    assert (schedule.version, schedule.paused, schedule.timezone, schedule.overlap) == (
        1,
        True,
        "UTC",
        "skip",
    )
    assert not schedule.incremental and schedule.webhook_url is None


def test_the_recipe_page_offers_to_schedule_the_recipe(console: Console) -> None:
    assert "schedule-recipe-form" not in console.client.get("/recipes/r").text
    csrf = console.login()
    page = console.client.get("/recipes/r").text
    assert 'id="schedule-recipe-form"' in page and '<input type="hidden" name="recipe" value="r">' in page
    assert '<option value="1">v1 (pinned)</option>' in page
    # The whole schedule form, as on the schedules page: policies and webhook too.
    for field in ('name="overlap"', 'name="catch_up"', 'name="webhook_url"', 'name="paused"'):
        assert field in page
    response = console.client.post(
        "/schedules/new",
        data={"csrf": csrf, "recipe": "r", "version": "", "cron": "*/30 * * * *", "timezone": "UTC"},
    )
    assert response.status_code == 303
    assert [(s.recipe, s.cron) for s in console.store.schedules()] == [("r", "*/30 * * * *")]


def test_editing_passes_only_the_fields_that_changed(console: Console) -> None:
    schedule = console.scheduler.add("r", None, "0 * * * *")
    csrf = console.login()
    page = _page(console, f"/schedules/{schedule.id}")
    assert 'id="edit-schedule-form"' in page and 'id="delete-schedule-form"' in page
    # Only the overlap changes: the next tick stays where it was.
    kept_tick = dt.datetime(2031, 1, 1, 13, tzinfo=UTC)
    same = {"cron": "0 * * * *", "timezone": "UTC", "overlap": "skip", "catch_up": "one", "webhook_url": ""}
    response = console.client.post(
        f"/schedules/{schedule.id}/edit", data={"csrf": csrf, **same, "overlap": "cancel"}
    )
    assert response.status_code == 303 and response.headers["location"] == f"/schedules/{schedule.id}"
    changed = _schedule(console, schedule.id)
    assert changed.overlap == "cancel" and changed.next_run_at == kept_tick
    assert f"Schedule #{schedule.id} changed." in _page(console, response.headers["location"])

    edit = {**FORM, "cron": " 30  4 * * 1 ", "timezone": "America/New_York", "catch_up": "none"}
    del edit["recipe"], edit["version"]
    assert (
        console.client.post(f"/schedules/{schedule.id}/edit", data={"csrf": csrf, **edit}).status_code == 303
    )
    changed = _schedule(console, schedule.id)
    assert (changed.cron, changed.timezone, changed.overlap, changed.catch_up) == (
        "30 4 * * 1",
        "America/New_York",
        "queue",
        "none",
    )
    assert changed.incremental and changed.webhook_url == FORM["webhook_url"]
    assert changed.next_run_at == dt.datetime(2031, 1, 6, 9, 30, tzinfo=UTC)  # Monday 04:30 EST

    # An empty webhook removes it; an unticked box turns incremental off.
    cleared = {**edit, "cron": "30 4 * * 1", "webhook_url": ""}
    del cleared["incremental"]
    console.client.post(f"/schedules/{schedule.id}/edit", data={"csrf": csrf, **cleared})
    changed = _schedule(console, schedule.id)
    assert changed.webhook_url is None and not changed.incremental and changed.cron == "30 4 * * 1"

    again = console.client.post(f"/schedules/{schedule.id}/edit", data={"csrf": csrf, **cleared})
    assert "unchanged" in _page(console, again.headers["location"])
    assert _schedule(console, schedule.id) == changed


BAD_CREATES = [
    ({"cron": "61 * * * *"}, "is not a cron expression"),
    ({"timezone": "Mars/Olympus"}, "is not a time zone"),
    ({"webhook_url": "ftp://hooks.example/x"}, "webhook_url must be an http:// or https:// URL"),
    ({"recipe": "nothing"}, "recipe 'nothing' is not registered"),
    ({"version": "7"}, "version 7 of recipe 'r' is not registered"),
    ({"version": "first"}, "version must be a version number"),
    ({"overlap": "sometimes"}, "overlap must be one of skip, queue, cancel"),
    ({"catch_up": "all"}, "catch_up must be one of one, none"),
    ({"incremental": "yes"}, "incremental must be ticked or not"),
]


@pytest.mark.parametrize(("change", "message"), BAD_CREATES, ids=[next(iter(c)) for c, _ in BAD_CREATES])
def test_a_refused_create_keeps_what_was_typed(
    console: Console, change: dict[str, str], message: str
) -> None:
    csrf = console.login()
    typed = {**FORM, "cron": "15 2 * * *", **change}
    response = console.client.post("/schedules/new", data={"csrf": csrf, **typed})
    assert response.status_code == 422
    page = html.unescape(response.text)
    assert "Not created:" in page and message in page
    for field in ("cron", "timezone", "webhook_url"):
        assert f'name="{field}" id="new-{field.replace("_url", "")}" value="{typed[field]}"' in page, field
    if change.keys() <= {"cron", "timezone", "webhook_url"}:  # valid selects stay selected
        assert '<option value="queue" selected>' in page and '<option value="none" selected>' in page
        assert 'id="new-incremental" value="on" checked' in page
    assert console.store.schedules(include_deleted=True) == []


def test_a_refused_edit_keeps_what_was_typed_and_changes_nothing(console: Console) -> None:
    schedule = console.scheduler.add("r", None, "0 * * * *")
    csrf = console.login()
    for field, value, message in (
        ("cron", "0 25 * * *", "is not a cron expression"),
        ("timezone", "Europe/Atlantis", "is not a time zone"),
        ("webhook_url", "not a url", "webhook_url must be"),
        ("overlap", "maybe", "overlap must be one of"),
    ):
        typed = {"cron": "5 * * * *", "timezone": "UTC", "overlap": "skip", "catch_up": "none", field: value}
        response = console.client.post(f"/schedules/{schedule.id}/edit", data={"csrf": csrf, **typed})
        assert response.status_code == 422, field
        page = html.unescape(response.text)
        assert "Not changed:" in page and message in page, field
        assert re.search(rf'name="cron" id="edit-cron" value="{re.escape(typed["cron"])}"', page), field
        assert f'value="{typed["timezone"]}"' in page and '<option value="none" selected>' in page, field
        assert _schedule(console, schedule.id) == schedule, field


def test_a_deleted_schedule_keeps_its_page_and_runs_but_leaves_the_list(console: Console) -> None:
    schedule = console.scheduler.add("r", None, "0 * * * *")
    (run,) = console.scheduler.tick(schedule.next_run_at)
    csrf = console.login()
    response = console.client.post(f"/schedules/{schedule.id}/delete", data={"csrf": csrf})
    assert response.status_code == 303 and response.headers["location"] == f"/schedules/{schedule.id}"
    assert _schedule(console, schedule.id).deleted_at == NOW
    page = _page(console, f"/schedules/{schedule.id}")
    assert f"Schedule #{schedule.id} deleted." in page and 'data-state="deleted"' in page
    assert 'id="deleted-note"' in page and f'href="/runs/{run.id}"' in page
    assert 'id="edit-schedule-form"' not in page and 'id="delete-schedule-form"' not in page
    assert f'data-schedule-id="{schedule.id}"' not in _page(console, "/schedules")
    listing = _page(console, "/schedules?deleted=1")
    assert f'<tr data-schedule-id="{schedule.id}" class="deleted"' in listing
    assert "deleted 2031-01-01 12:00:00 UTC" in listing
    # A deleted schedule is not changed nor deleted twice.
    edit = console.client.post(f"/schedules/{schedule.id}/edit", data={"csrf": csrf, "cron": "@daily"})
    assert "cannot be changed" in _page(console, edit.headers["location"])
    assert _schedule(console, schedule.id).cron == "0 * * * *"
    again = console.client.post(f"/schedules/{schedule.id}/delete", data={"csrf": csrf})
    assert "already deleted" in _page(console, again.headers["location"])
    assert console.client.get("/schedules/999").status_code == 404


def test_no_schedule_form_works_without_a_session_and_its_csrf_token(console: Console) -> None:
    schedule = console.scheduler.add("r", None, "0 * * * *")
    posts = [
        ("/schedules/new", FORM),
        (f"/schedules/{schedule.id}/edit", {**FORM, "cron": "@daily"}),
        (f"/schedules/{schedule.id}/delete", {}),
    ]
    before = console.store.schedules(include_deleted=True)
    for path, data in posts:
        response = console.client.post(path, data={**data, "csrf": "x"})
        assert response.status_code == 403 and "Not allowed" in response.text, path
    csrf = console.login()
    wrong = csrf[:-1] + ("0" if csrf[-1] != "0" else "1")
    for path, data in posts:
        for token in ("", wrong):
            assert console.client.post(path, data={**data, "csrf": token}).status_code == 403, path
    assert console.store.schedules(include_deleted=True) == before


def test_the_schedule_page_explains_its_rules_and_next_ticks(console: Console) -> None:
    schedule = console.scheduler.add(
        "r", None, "0 3 * * *", overlap="queue", catch_up="none", timezone="Europe/Berlin"
    )
    page = _page(console, f"/schedules/{schedule.id}")
    assert 'method="post"' not in page  # no forms without a login
    assert 'href="/recipes/r"' in page and "newest at each tick" in page
    assert 'data-catch-up="none"' in page and "fire nothing; the schedule waits for its next tick" in page
    assert 'data-overlap="queue"' in page and "start it when the older run ends" in page
    ticks = re.findall(r'<li data-tick="([^"]+)">', page)
    assert ticks == [f"2031-01-0{day}T02:00:00+00:00" for day in (2, 3, 4)]
    assert re.search(r"2031-01-02 02:00:00 UTC <span[^>]*>= 2031-01-02 03:00 CET<", page)
    assert f'id="schedule-{schedule.id}"><a href="/schedules/{schedule.id}">' in _page(console, "/schedules")

    # Paused from its own page, the button comes back to it; the ticks are those resuming would give.
    csrf = console.login()
    paused = console.client.post(
        f"/schedules/{schedule.id}/pause", data={"csrf": csrf, "next": f"/schedules/{schedule.id}"}
    )
    assert paused.headers["location"] == f"/schedules/{schedule.id}"
    page = _page(console, paused.headers["location"])
    assert f"Schedule #{schedule.id} paused." in page and "Ticks if resumed now" in page
    assert f'id="resume-{schedule.id}"' in page
    outside = console.client.post(
        f"/schedules/{schedule.id}/resume", data={"csrf": csrf, "next": "//evil.example"}
    )
    assert outside.headers["location"] == "/schedules"
