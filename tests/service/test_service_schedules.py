"""Cron schedules on the service's (test) clock: a tick fires once, pausing holds it, restarts never refire."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from servicekit import FakeClock, ServiceHandle, finished

pytestmark = pytest.mark.ray


def _runs_of(service: ServiceHandle, schedule_id: int) -> list[dict]:
    return [
        r
        for r in service.get("/api/runs", params={"recipe": "no-input"}).json()
        if r["schedule_id"] == schedule_id
    ]


def _settle(service: ServiceHandle) -> None:
    """Let the scheduler loop (every 0.2 s here) go round several times."""
    time.sleep(1.5)


def _wait_for_runs(service: ServiceHandle, schedule_id: int, count: int) -> list[dict]:
    """The schedule's runs once there are `count` of them; then a few more loop rounds to catch any extra."""
    deadline = time.monotonic() + 60
    while len(_runs_of(service, schedule_id)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    _settle(service)
    return _runs_of(service, schedule_id)


def test_a_schedule_fires_each_tick_once_and_survives_restarts(
    service: ServiceHandle, clock: FakeClock, failing_recipe: str
) -> None:
    clock.set(dt.datetime(2031, 5, 4, 10, 2, 30, tzinfo=dt.UTC))
    try:
        _fire_pause_resume_restart(service, clock, failing_recipe)
    finally:
        clock.release()


def _fire_pause_resume_restart(service: ServiceHandle, clock: FakeClock, failing_recipe: str) -> None:
    assert service.post("/api/recipes", json={"yaml": failing_recipe}).status_code in (200, 201)
    created = service.post("/api/schedules", json={"recipe": "no-input", "cron": "*/15 * * * *"})
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["next_run_at"] == "2031-05-04T10:15:00Z" and schedule["version"] is None
    _settle(service)
    assert _runs_of(service, schedule["id"]) == []

    clock.set(dt.datetime(2031, 5, 4, 10, 15, 4, tzinfo=dt.UTC))
    (run,) = _wait_for_runs(service, schedule["id"], 1)
    assert run["trigger"] == "schedule" and run["scheduled_for"] == "2031-05-04T10:15:00Z"
    assert service.get(f"/api/schedules/{schedule['id']}").json()["next_run_at"] == "2031-05-04T10:30:00Z"
    # The scheduled run is a real job: it fails on its missing input, with the reason.
    run = service.wait_for_run(run["id"], finished)
    assert run["status"] == "FAILED" and "/nonexistent/" in run["error"]

    # Paused: the 10:30 and 10:45 ticks pass without a run.
    paused = service.request("PATCH", f"/api/schedules/{schedule['id']}", json={"paused": True})
    assert paused.status_code == 200 and paused.json()["paused"] is True
    clock.set(dt.datetime(2031, 5, 4, 10, 50, 0, tzinfo=dt.UTC))
    _settle(service)
    assert len(_runs_of(service, schedule["id"])) == 1
    assert 'data-schedule-id="{}"'.format(schedule["id"]) in service.get("/schedules").text

    # Resumed: the next tick is the first one after resuming; the missed ones are not replayed.
    resumed = service.request("PATCH", f"/api/schedules/{schedule['id']}", json={"paused": False}).json()
    assert resumed["next_run_at"] == "2031-05-04T11:00:00Z"

    # Down over three ticks (11:00, 11:15, 11:30): on start the missed ticks fire once, as one run.
    service.stop()
    clock.set(dt.datetime(2031, 5, 4, 11, 40, 0, tzinfo=dt.UTC))
    service.start()
    runs = _wait_for_runs(service, schedule["id"], 2)
    assert [r["scheduled_for"] for r in runs] == ["2031-05-04T11:00:00Z", "2031-05-04T10:15:00Z"]
    assert service.get(f"/api/schedules/{schedule['id']}").json()["next_run_at"] == "2031-05-04T11:45:00Z"
    # Restarted again within the same tick interval: nothing fires twice.
    service.restart()
    _settle(service)
    assert len(_runs_of(service, schedule["id"])) == 2
    for r in runs:
        service.wait_for_run(r["id"], finished)
    assert service.request("DELETE", f"/api/schedules/{schedule['id']}").status_code == 204
    assert service.get(f"/api/schedules/{schedule['id']}").status_code == 404
    assert service.get(f"/api/runs/{runs[0]['id']}").json()["schedule_id"] == schedule["id"]  # kept


def test_schedule_requests_are_checked_and_a_new_cron_moves_the_next_tick(
    service: ServiceHandle, failing_recipe: str
) -> None:
    service.post("/api/recipes", json={"yaml": failing_recipe})
    for body in (
        {"recipe": "no-input", "cron": "every day"},
        {"recipe": "no-input", "cron": "61 * * * *"},
        {"recipe": "no-input", "cron": "0 3 * * *", "timezone": "Europe/Pariss"},
    ):
        response = service.post("/api/schedules", json=body)
        assert response.status_code == 422, body
    for body in (  # an unknown recipe is 404, as in every route
        {"recipe": "not-registered", "cron": "0 3 * * *"},
        {"recipe": "no-input", "version": 99, "cron": "0 3 * * *"},
    ):
        response = service.post("/api/schedules", json=body)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", body
    assert (
        "five fields"
        in service.post("/api/schedules", json={"recipe": "no-input", "cron": "x"}).json()["error"]["message"]
    )
    # A paused yearly schedule, then a new cron expression: the next tick follows the new expression.
    created = service.post(
        "/api/schedules", json={"recipe": "no-input", "cron": "0 3 * * *", "paused": True}
    ).json()
    year = dt.datetime.now(dt.UTC).year
    changed = service.request("PATCH", f"/api/schedules/{created['id']}", json={"cron": "0 0 1 1 *"})
    assert changed.status_code == 200 and changed.json()["cron"] == "0 0 1 1 *" and changed.json()["paused"]
    assert changed.json()["next_run_at"] is None  # paused: no next tick to show
    resumed = service.request("PATCH", f"/api/schedules/{created['id']}", json={"paused": False}).json()
    assert resumed["next_run_at"] == f"{year + 1}-01-01T00:00:00Z"
    bad = service.request("PATCH", f"/api/schedules/{created['id']}", json={"cron": "0 0 1 13 *"})
    assert bad.status_code == 422
    assert service.request("PATCH", "/api/schedules/99999", json={"paused": True}).status_code == 404
    assert service.request("DELETE", f"/api/schedules/{created['id']}").status_code == 204
