"""The metadata store on both backends it supports, SQLite and a real PostgreSQL server, through one code path:
versions, atomic tick claims between two service processes, guarded status changes, UTC times, deletions, and
a database made by an older service opening with the columns added since."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy

from corpusmill.service import db
from corpusmill.service.db import make_engine, with_driver
from corpusmill.service.recipes import register_recipe
from corpusmill.service.store import CANCELLED, FAILED, PENDING, QUEUED, RUNNING, Store

UTC = dt.UTC
RECIPE = "name: nightly\ninput: {paths: [/data/x/*.jsonl]}\nstages: [tokenize]\n"


def _pg_bin() -> Path:
    """Debian's server binaries (the newest installed major version), or whatever is on PATH."""
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    found = (
        installed[-1]
        if installed
        else Path(shutil.which("postgres") or "/usr/lib/postgresql/15/bin/postgres")
    )
    return found.parent


PG_BIN = _pg_bin()


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; as root, run it as the `postgres` user Debian's package creates."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on a free loopback port (Debian's postgresql package)."""
    assert (PG_BIN / "postgres").exists(), (
        f"PostgreSQL is missing: apt-get install -y postgresql (looked in {PG_BIN})"
    )
    root = Path(tempfile.mkdtemp(prefix="cm-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = root / "data"
    subprocess.run(
        _as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "corpusmill", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://corpusmill@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    base = request.getfixturevalue("postgres")
    name = f"t{time.time_ns()}"
    admin = sqlalchemy.create_engine(with_driver(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    yield base.rsplit("/", 1)[0] + f"/{name}"


def _place(run_id: int) -> tuple[str, str]:
    return f"/runs/{run_id}", f"job-{run_id}"


def test_the_driver_is_chosen_for_plain_postgresql_urls() -> None:
    assert with_driver("postgresql://u:p@h:5/db") == "postgresql+psycopg://u:p@h:5/db"
    assert with_driver("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert with_driver("sqlite:///x.db") == "sqlite:///x.db"


def test_two_service_processes_fire_a_tick_once(url: str) -> None:
    first, second = Store(make_engine(url)), Store(make_engine(url))  # two engines: two processes' pools
    now = dt.datetime(2031, 1, 1, 3, 0, 5, tzinfo=UTC)
    recipe, created = register_recipe(first, RECIPE, now)
    assert created and register_recipe(second, RECIPE, now) == (recipe, False)
    tick = dt.datetime(2031, 1, 1, 3, tzinfo=UTC)
    schedule = first.add_schedule("nightly", None, "0 3 * * *", False, tick, now)
    assert schedule.next_run_at == tick and schedule.created_at == now  # aware UTC back
    (seen_by_first,) = first.due_schedules(now)
    (seen_by_second,) = second.due_schedules(now)
    following = dt.datetime(2031, 1, 2, 3, tzinfo=UTC)
    won = first.fire_schedule(seen_by_first, following, recipe, now, _place)
    lost = second.fire_schedule(seen_by_second, following, recipe, now, _place)
    assert won is not None and lost is None
    assert (won.status, won.trigger, won.scheduled_for, won.run_dir) == (
        QUEUED,
        "schedule",
        tick,
        f"/runs/{won.id}",
    )
    assert [r.id for r in second.runs()] == [won.id]
    assert second.due_schedules(now) == [] and second.schedule(schedule.id).next_run_at == following
    # Paused schedules are never due.
    second.update_schedule(schedule.id, paused=True)
    assert first.due_schedules(following + dt.timedelta(days=9)) == []


def test_two_service_processes_share_one_session_key(url: str) -> None:
    first, second = Store(make_engine(url)), Store(make_engine(url))
    made: list[str] = []

    def make(value: str) -> Callable[[], str]:
        return lambda: made.append(value) or value

    assert first.secret("session", make("a" * 64)) == "a" * 64
    # The second process finds the stored key; its own is never made, let alone stored.
    assert second.secret("session", make("b" * 64)) == "a" * 64
    assert made == ["a" * 64]
    assert second.secret("other", make("c" * 64)) == "c" * 64
    assert first.secret("other", make("d" * 64)) == "c" * 64


def test_status_changes_are_guarded_and_deleting_a_schedule_keeps_its_runs(url: str) -> None:
    store = Store(make_engine(url))
    now = dt.datetime(2031, 6, 1, 12, tzinfo=UTC)
    recipe, _ = register_recipe(store, RECIPE, now)
    run = store.add_run(recipe, now, _place)
    assert store.update_run(run.id, expect=[QUEUED], status=PENDING, submitted_at=now)
    assert not store.update_run(run.id, expect=[QUEUED], status=CANCELLED)  # no longer queued
    progress = {"steps": [{"step": "01-tokenize_v1", "parts_done": 3, "stages": []}]}
    assert store.update_run(run.id, expect=[PENDING, RUNNING], status=RUNNING, progress=progress)
    assert store.update_run(run.id, expect=[RUNNING], status=FAILED, error="boom", finished_at=now)
    found = store.run(run.id)
    assert (found.status, found.error, found.progress, found.submitted_at) == (FAILED, "boom", progress, now)
    assert [r.id for r in store.runs(statuses=[FAILED], recipe="nightly")] == [run.id]
    assert store.runs(statuses=[QUEUED, PENDING, RUNNING]) == []

    schedule = store.add_schedule("nightly", 1, "0 * * * *", False, now, now)
    scheduled = store.fire_schedule(schedule, now + dt.timedelta(hours=1), recipe, now, _place)
    assert scheduled is not None and scheduled.schedule_id == schedule.id
    assert store.delete_schedule(schedule.id, now) and store.schedule(schedule.id) is None
    assert store.schedule(schedule.id, include_deleted=True).deleted_at == now
    assert store.run(scheduled.id).schedule_id == schedule.id and not store.delete_schedule(schedule.id)
    assert store.add_schedule("nightly", 1, "0 * * * *", False, now, now).id > schedule.id  # never reused


# Columns added after the first release; a database made before them must still open.
ADDED_COLUMNS = {
    "schedules": {
        "incremental",
        "overlap",
        "catch_up",
        "timezone",
        "webhook_url",
        "skipped_ticks",
        "deleted_at",
    },
    "runs": {"base_run_id", "base_note", "incremental"},
}


def _first_release_tables(url: str) -> None:
    """The tables as the first release of the service created them (without ADDED_COLUMNS), with a row each."""
    old = sqlalchemy.MetaData()
    for table in db.metadata.sorted_tables:
        skip = ADDED_COLUMNS.get(table.name, set())
        sqlalchemy.Table(table.name, old, *(c._copy() for c in table.columns if c.name not in skip))
    engine = sqlalchemy.create_engine(with_driver(url))
    old.create_all(engine)
    t = dt.datetime(2031, 1, 1)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.insert(old.tables["recipes"]).values(
                name="old", version=1, yaml="y", normalized="n", fingerprint="f", digest="d", created_at=t
            )
        )
        conn.execute(
            sqlalchemy.insert(old.tables["schedules"]).values(
                recipe="old", cron="0 3 * * *", paused=False, next_run_at=t, created_at=t
            )
        )
        conn.execute(
            sqlalchemy.insert(old.tables["runs"]).values(
                recipe="old",
                version=1,
                recipe_id=1,
                status="SUCCEEDED",
                trigger="schedule",
                schedule_id=1,
                created_at=t,
            )
        )
    engine.dispose()


def test_a_database_of_an_older_service_opens_with_the_new_columns(url: str) -> None:
    _first_release_tables(url)
    store = Store(make_engine(url))
    (schedule,) = store.schedules()
    assert schedule.recipe == "old" and schedule.incremental is False
    assert (schedule.overlap, schedule.catch_up, schedule.timezone) == ("skip", "one", "UTC")
    assert (schedule.webhook_url, schedule.skipped_ticks, schedule.deleted_at) == (None, 0, None)
    run = store.last_schedule_run(schedule.id, status="SUCCEEDED")
    assert (run.base_run_id, run.base_note, run.incremental) == (None, None, None)
    assert db.add_missing_columns(store.engine) == []  # nothing left to add; opening again changes nothing
    # The new columns work like any other, foreign key included.
    now = dt.datetime(2031, 2, 1, tzinfo=UTC)
    incremental = store.add_schedule("old", None, "0 4 * * *", False, now, now, incremental=True)
    recipe = store.recipe("old")
    fired = store.fire_schedule(incremental, now, recipe, now, _place, base_run_id=run.id, base_note=None)
    assert incremental.incremental and fired.base_run_id == run.id
    assert store.update_run(fired.id, incremental={"added_count": 2})
    assert store.run(fired.id).incremental == {"added_count": 2}
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        store.update_run(fired.id, base_run_id=99999)
    assert store.update_schedule(incremental.id, incremental=False).incremental is False
    # A schedule of the old database is deleted softly: its run keeps naming it, its id is not reused.
    assert store.delete_schedule(schedule.id, now) and store.schedules() == [store.schedule(incremental.id)]
    assert store.run(run.id).schedule_id == schedule.id
    assert store.add_schedule("old", None, "0 5 * * *", False, now, now).id > incremental.id
