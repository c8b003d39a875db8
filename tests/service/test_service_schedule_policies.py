"""Schedules' rules on an injected clock with a stand-in for Ray's Jobs API (no Ray here): what a tick does
when the last run is still in flight (skip, queue, cancel), catch-up after downtime, cron macros and time
zones across DST, soft deletes that keep ids and history, paused schedules' next tick, and the webhook."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient
from servicekit import AUTH, TOKEN

from corpusmill.service.app import create_app
from corpusmill.service.db import make_engine
from corpusmill.service.jobs import JobNotFound, JobState
from corpusmill.service.recipes import register_recipe
from corpusmill.service.runs import RunManager
from corpusmill.service.scheduler import ScheduleError, Scheduler, check_cron, check_timezone, next_tick
from corpusmill.service.settings import ServiceSettings
from corpusmill.service.store import (
    ACTIVE,
    CANCELLED,
    FAILED,
    PENDING,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Run,
    Store,
)

UTC = dt.UTC
RECIPE = "name: nightly\ninput: {paths: [/x/*.jsonl]}\nstages: [tokenize]\n"


class FakeJobs:
    """The Jobs API as the run manager uses it: jobs run until the test ends them or they are stopped."""

    address = "http://ray.invalid:8265"

    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.stopped: list[str] = []

    def submit(self, job_id: str, entrypoint: str, metadata: dict[str, str]) -> None:
        assert job_id not in self.states, f"job {job_id} submitted twice"
        self.states[job_id] = "RUNNING"

    def info(self, job_id: str) -> JobState:
        if job_id not in self.states:
            raise JobNotFound(job_id)
        return JobState(self.states[job_id], None, None, None, 1 if self.states[job_id] == "FAILED" else 0)

    def logs(self, job_id: str) -> str:
        return "error: the test failed this job\n"

    def stop(self, job_id: str) -> bool:
        if job_id not in self.states:
            raise JobNotFound(job_id)
        self.stopped.append(job_id)
        self.states[job_id] = "STOPPED"
        return True


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Kit:
    store: Store
    jobs: FakeJobs
    clock: Clock
    manager: RunManager
    scheduler: Scheduler

    def at(self, *hms: int) -> list[Run]:
        """Set the clock to 2031-05-04 h:m:s, follow the jobs, and run one scheduler round."""
        self.clock.now = dt.datetime(2031, 5, 4, *hms, tzinfo=UTC)
        self.manager.poll_once()
        return self.scheduler.tick()

    def end(self, run: Run, status: str = "SUCCEEDED", warnings: list[dict] | None = None) -> Run:
        """End the run's job (a succeeded run has its manifest.json, and a report when warnings are given)."""
        run_dir = Path(run.run_dir or "")
        if status == "SUCCEEDED":
            (run_dir / "manifest.json").write_text("{}")
        if warnings is not None:
            (run_dir / "report").mkdir(parents=True, exist_ok=True)
            (run_dir / "report" / "mixture.json").write_text(json.dumps({"warnings": warnings}))
        self.jobs.states[run.ray_job_id or ""] = status
        self.manager.poll_once()
        ended = self.store.run(run.id)
        assert ended is not None
        return ended

    def runs(self, schedule_id: int) -> list[Run]:
        """The schedule's runs, oldest first."""
        return sorted((r for r in self.store.runs() if r.schedule_id == schedule_id), key=lambda r: r.id)


def _kit(tmp_path: Path, name: str = "db.sqlite") -> Kit:
    store = Store(make_engine(f"sqlite:///{tmp_path / name}"))
    jobs = FakeJobs()
    clock = Clock(dt.datetime(2031, 5, 4, 10, 2, 30, tzinfo=UTC))
    manager = RunManager(store, jobs, tmp_path / "runs", "python", clock)  # type: ignore[arg-type]
    if store.recipe("nightly") is None:
        register_recipe(store, RECIPE, clock())
    return Kit(store, jobs, clock, manager, Scheduler(store, manager, clock))


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return _kit(tmp_path)


def _in_flight(kit: Kit, schedule_id: int) -> list[Run]:
    """The schedule's runs that have a job on the cluster and have not ended."""
    return [r for r in kit.runs(schedule_id) if r.status in (PENDING, RUNNING)]


def test_skip_two_ticks_of_a_run_longer_than_its_interval_give_one_run(kit: Kit) -> None:
    schedule = kit.scheduler.add("nightly", None, "*/15 * * * *")
    assert schedule.overlap == "skip" and schedule.catch_up == "one" and schedule.timezone == "UTC"
    (first,) = kit.at(10, 15, 4)
    assert kit.at(10, 15, 30) == [] and kit.store.run(first.id).status == RUNNING
    assert kit.at(10, 30, 4) == []  # the first run is still running: this tick fires nothing
    assert [r.id for r in kit.runs(schedule.id)] == [first.id]
    skipped = kit.store.schedule(schedule.id)
    assert skipped.skipped_ticks == 1 and skipped.next_run_at == dt.datetime(2031, 5, 4, 10, 45, tzinfo=UTC)
    kit.end(first)
    (second,) = kit.at(10, 45, 4)  # the run ended: the next tick fires again
    assert second.scheduled_for == dt.datetime(2031, 5, 4, 10, 45, tzinfo=UTC) and second.status == PENDING
    assert kit.store.schedule(schedule.id).skipped_ticks == 1


def test_queue_starts_the_new_run_when_the_old_one_ends_and_never_both(kit: Kit, tmp_path: Path) -> None:
    schedule = kit.scheduler.add("nightly", None, "*/15 * * * *", overlap="queue")
    (first,) = kit.at(10, 15, 4)
    (held,) = kit.at(10, 30, 4)
    assert held.status == QUEUED and held.ray_job_id not in kit.jobs.states  # created, not submitted
    assert kit.at(10, 45, 4) == []  # one run waits already: this tick is skipped, runs do not pile up
    assert len(kit.runs(schedule.id)) == 2 and kit.store.schedule(schedule.id).skipped_ticks == 1
    assert [r.id for r in _in_flight(kit, schedule.id)] == [first.id]

    # A restart does not submit the held run behind the scheduler's back.
    restarted = _kit(tmp_path)
    restarted.jobs = kit.jobs
    restarted.manager.jobs = kit.jobs
    restarted.manager.recover()
    assert kit.store.run(held.id).status == QUEUED and held.ray_job_id not in kit.jobs.states

    kit.end(first, "FAILED")
    (started,) = kit.at(10, 46, 0)  # the old run ended: the held one is submitted
    assert started.id == held.id and started.status == PENDING and held.ray_job_id in kit.jobs.states
    assert [r.id for r in _in_flight(kit, schedule.id)] == [held.id]
    assert kit.at(10, 47, 0) == []  # submitted once


def test_cancel_stops_the_old_run_and_starts_the_new_one(kit: Kit) -> None:
    schedule = kit.scheduler.add("nightly", None, "*/15 * * * *", overlap="cancel")
    (first,) = kit.at(10, 15, 4)
    kit.at(10, 20, 0)
    (second,) = kit.at(10, 30, 4)
    assert kit.jobs.stopped == [first.ray_job_id] and second.status == PENDING
    kit.at(10, 30, 6)  # the poller records the stop
    assert kit.store.run(first.id).status == CANCELLED
    assert [r.id for r in _in_flight(kit, schedule.id)] == [second.id]


def test_catch_up_one_coalesces_missed_ticks_and_none_skips_them(kit: Kit) -> None:
    one = kit.scheduler.add("nightly", None, "*/15 * * * *")
    none = kit.scheduler.add("nightly", None, "*/15 * * * *", catch_up="none")
    # Down from before 10:15 to 11:40: `one` fires one run for the first missed tick; `none` fires nothing.
    (run,) = kit.at(11, 40, 0)
    assert run.schedule_id == one.id and run.scheduled_for == dt.datetime(2031, 5, 4, 10, 15, tzinfo=UTC)
    waited = kit.store.schedule(none.id)
    assert waited.next_run_at == dt.datetime(2031, 5, 4, 11, 45, tzinfo=UTC) and waited.skipped_ticks == 1
    kit.end(run)
    assert {r.schedule_id for r in kit.at(11, 45, 20)} == {one.id, none.id}  # on time: both fire
    # A tick reached late but within the grace fires; one found after it counts as missed.
    for r in kit.runs(one.id) + kit.runs(none.id):
        if r.status in ACTIVE:
            kit.end(r)
    assert {r.schedule_id for r in kit.at(12, 1, 30)} == {one.id, none.id}
    for r in kit.runs(one.id) + kit.runs(none.id):
        if r.status in ACTIVE:
            kit.end(r)
    assert {r.schedule_id for r in kit.at(12, 19, 0)} == {one.id}
    assert kit.store.schedule(none.id).skipped_ticks == 2


def test_cron_macros_and_time_zones_across_dst() -> None:
    assert check_cron("@daily") == "@daily" and check_cron(" @Annually ") == "@annually"
    for macro in ("@hourly", "@weekly", "@monthly", "@yearly"):
        assert check_cron(macro) == macro
    for bad, says in (
        ("@reboot", "not a cron macro"),
        ("@every 5m", "not a cron macro"),
        ("61 * * * *", "five"),
    ):
        with pytest.raises(ScheduleError, match=says):
            check_cron(bad)
    assert next_tick("@daily", dt.datetime(2031, 1, 1, 5, tzinfo=UTC)) == dt.datetime(2031, 1, 2, tzinfo=UTC)
    assert check_timezone("Europe/Berlin") == "Europe/Berlin"
    for bad in ("Mars/Olympus", "", "../etc/passwd", " UTC", "/usr/share/zoneinfo/UTC"):
        with pytest.raises(ScheduleError, match="IANA"):
            check_timezone(bad)

    # 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer: the ticks follow the clocks.
    def ticks(start: dt.datetime, count: int, cron: str = "0 3 * * *") -> list[dt.datetime]:
        out = [next_tick(cron, start, "Europe/Berlin")]
        while len(out) < count:
            out.append(next_tick(cron, out[-1], "Europe/Berlin"))
        return out

    spring = ticks(dt.datetime(2031, 3, 28, 12, tzinfo=UTC), 3)  # DST starts on 30 March 2031
    assert spring == [dt.datetime(2031, 3, d, h, tzinfo=UTC) for d, h in ((29, 2), (30, 1), (31, 1))]
    autumn = ticks(dt.datetime(2031, 10, 24, 12, tzinfo=UTC), 3)  # and ends on 26 October
    assert autumn == [dt.datetime(2031, 10, d, h, tzinfo=UTC) for d, h in ((25, 1), (26, 2), (27, 2))]
    # An hourly cron on the night the clocks go back: 02:30 happens twice, an hour apart.
    night = ticks(dt.datetime(2031, 10, 26, 0, tzinfo=UTC), 3, "30 * * * *")
    assert night == [dt.datetime(2031, 10, 26, h, 30, tzinfo=UTC) for h in (0, 1, 2)]


def test_a_schedule_in_a_time_zone_fires_at_its_local_time(kit: Kit) -> None:
    kit.clock.now = dt.datetime(2031, 3, 29, 12, tzinfo=UTC)
    schedule = kit.scheduler.add("nightly", None, "0 3 * * *", timezone="Europe/Berlin")
    assert schedule.next_run_at == dt.datetime(2031, 3, 30, 1, tzinfo=UTC)  # the first summer-time night
    (run,) = kit.scheduler.tick(dt.datetime(2031, 3, 30, 1, 0, 5, tzinfo=UTC))
    assert run.scheduled_for == dt.datetime(2031, 3, 30, 1, tzinfo=UTC)
    assert kit.store.schedule(schedule.id).next_run_at == dt.datetime(2031, 3, 31, 1, tzinfo=UTC)
    moved = kit.scheduler.change(kit.store.schedule(schedule.id), timezone="America/New_York")
    assert moved.timezone == "America/New_York"
    assert moved.next_run_at == dt.datetime(2031, 3, 30, 7, tzinfo=UTC)  # 03:00 EDT, recomputed from now
    with pytest.raises(ScheduleError, match="IANA"):
        kit.scheduler.add("nightly", None, "0 3 * * *", timezone="Europe/Berlim")
    with pytest.raises(ScheduleError, match="overlap"):
        kit.scheduler.add("nightly", None, "0 3 * * *", overlap="pile-up")
    for bad in ("ftp://example.org/hook", "example.org/hook", "http:///nohost"):
        with pytest.raises(ScheduleError, match="webhook_url"):
            kit.scheduler.add("nightly", None, "0 3 * * *", webhook_url=bad)


def test_a_deleted_schedule_keeps_its_id_and_its_runs(kit: Kit) -> None:
    first = kit.scheduler.add("nightly", None, "*/15 * * * *")
    (run,) = kit.at(10, 15, 4)
    kit.end(run)
    assert kit.store.delete_schedule(first.id, kit.clock()) and not kit.store.delete_schedule(first.id)
    assert kit.store.schedule(first.id) is None and kit.store.schedules() == []
    (deleted,) = kit.store.schedules(include_deleted=True)
    assert deleted.id == first.id and deleted.deleted_at == kit.clock()
    assert kit.store.run(run.id).schedule_id == first.id  # the run still names its schedule
    assert kit.at(10, 30, 4) == []  # a deleted schedule never fires
    second = kit.scheduler.add("nightly", None, "*/15 * * * *")
    assert second.id > first.id  # ids are never reused


def _app_client(tmp_path: Path, clock: Clock) -> TestClient:
    settings = ServiceSettings(
        data_dir=tmp_path / "service",
        api_token=TOKEN,
        ray_address="http://127.0.0.1:9",  # never reached: the jobs are replaced below
        poll_interval_s=3600,
        schedule_interval_s=3600,
    )
    return TestClient(create_app(settings, clock=clock))


def test_the_api_takes_and_shows_the_schedule_rules(tmp_path: Path) -> None:
    clock = Clock(dt.datetime(2031, 3, 29, 12, tzinfo=UTC))
    with _app_client(tmp_path, clock) as client:
        client.app.state.services.manager.jobs = FakeJobs()
        assert client.post("/api/recipes", json={"yaml": RECIPE}, headers=AUTH).status_code == 201
        body = {
            "recipe": "nightly",
            "cron": "@daily",
            "timezone": "Europe/Berlin",
            "overlap": "queue",
            "catch_up": "none",
            "webhook_url": "https://hooks.example.org/corpusmill",
        }
        created = client.post("/api/schedules", json=body, headers=AUTH)
        assert created.status_code == 201, created.text
        schedule = created.json()
        assert {k: schedule[k] for k in body} == body
        assert schedule["next_run_at"] == "2031-03-29T23:00:00Z" and schedule["skipped_ticks"] == 0
        assert schedule["deleted_at"] is None
        for bad, says in (
            ({"timezone": "Europe/Berlim"}, "IANA"),
            ({"cron": "@fortnightly"}, "@daily"),
            ({"overlap": "pile"}, "overlap"),
            ({"webhook_url": "file:///etc/passwd"}, "webhook_url"),
        ):
            refused = client.post("/api/schedules", json={**body, **bad}, headers=AUTH)
            assert refused.status_code == 422 and says in refused.text, refused.text

        # Paused: no next tick shown; resumed: the next tick from now.
        url = f"/api/schedules/{schedule['id']}"
        paused = client.patch(url, json={"paused": True}, headers=AUTH).json()
        assert paused["paused"] and paused["next_run_at"] is None
        assert client.get(url).json()["next_run_at"] is None
        assert client.patch(url, json={"cron": "0 5 * * *"}, headers=AUTH).json()["next_run_at"] is None
        clock.now = dt.datetime(2031, 4, 2, 12, tzinfo=UTC)
        resumed = client.patch(url, json={"paused": False, "webhook_url": ""}, headers=AUTH).json()
        assert resumed["next_run_at"] == "2031-04-03T03:00:00Z" and resumed["webhook_url"] is None
        changed = client.patch(url, json={"overlap": "cancel", "catch_up": "one"}, headers=AUTH).json()
        assert (changed["overlap"], changed["catch_up"], changed["cron"]) == ("cancel", "one", "0 5 * * *")

        # A run of the schedule, then a delete: 404 saying it was deleted, the run keeps its schedule_id.
        (run,) = client.app.state.services.scheduler.tick(dt.datetime(2031, 4, 3, 3, 0, 5, tzinfo=UTC))
        assert client.delete(url, headers=AUTH).status_code == 204
        gone = client.get(url)
        assert gone.status_code == 404 and "was deleted" in gone.text
        assert client.delete(url, headers=AUTH).status_code == 404
        assert client.get("/api/schedules").json() == []
        (listed,) = client.get("/api/schedules", params={"deleted": "true"}).json()
        assert listed["id"] == schedule["id"] and listed["deleted_at"] is not None
        assert client.get(f"/api/runs/{run.id}").json()["schedule_id"] == schedule["id"]
        again = client.post("/api/schedules", json=body, headers=AUTH).json()
        assert again["id"] > schedule["id"]


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict]]]:
    """A real HTTP server on loopback that records the JSON bodies POSTed to it."""
    received: list[dict] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_the_webhook_hears_of_failures_and_warnings_only(kit: Kit, hook: tuple[str, list[dict]]) -> None:
    url, received = hook
    schedule = kit.scheduler.add("nightly", None, "*/15 * * * *", webhook_url=url)
    (failed,) = kit.at(10, 15, 4)
    assert kit.end(failed, "FAILED").status == FAILED
    (clean,) = kit.at(10, 30, 4)
    assert kit.end(clean, warnings=[]).status == SUCCEEDED  # no warnings: nothing to say
    (warned,) = kit.at(10, 45, 4)
    warning = {"stage": "05-mix_v1", "kind": "plan", "message": "5 requested domains had no documents"}
    assert kit.end(warned, warnings=[warning]).status == SUCCEEDED
    kit.scheduler.notifier.join()
    received.sort(key=lambda body: body["run_id"])
    assert "the test failed this job" in received[0].pop("error") and received[1].pop("error") is None
    assert received == [
        {
            "schedule_id": schedule.id,
            "run_id": failed.id,
            "recipe": "nightly:v1",
            "status": "FAILED",
            "warnings": [],
            "url": f"/runs/{failed.id}",
        },
        {
            "schedule_id": schedule.id,
            "run_id": warned.id,
            "recipe": "nightly:v1",
            "status": "SUCCEEDED",
            "warnings": ["5 requested domains had no documents"],
            "url": f"/runs/{warned.id}",
        },
    ]
    assert (kit.scheduler.notifier.delivered, kit.scheduler.notifier.failed) == (2, 0)


def test_a_dead_webhook_is_counted_and_never_fails_the_run(kit: Kit) -> None:
    dead = "http://127.0.0.1:9/hook"  # nothing listens on the discard port
    kit.scheduler.add("nightly", None, "*/15 * * * *", webhook_url=dead)
    (run,) = kit.at(10, 15, 4)
    assert kit.end(run, "FAILED").status == FAILED
    kit.scheduler.notifier.join()
    assert (kit.scheduler.notifier.delivered, kit.scheduler.notifier.failed) == (0, 1)
