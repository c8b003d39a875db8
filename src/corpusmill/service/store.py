"""Reads and writes of the service's metadata: recipe versions, schedules and runs.

Every state change that two threads (or two service processes) could race on is a single conditional
statement: a run moves from one status to the next only `WHERE status IN (...)`, and a schedule's tick is
claimed only `WHERE next_run_at = <the tick we saw>`, in the same transaction that inserts its run. Rows are
returned as frozen dataclasses with aware UTC times.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from corpusmill.service.db import recipes, runs, schedules, shared_secrets

QUEUED, PENDING, RUNNING = "QUEUED", "PENDING", "RUNNING"
SUCCEEDED, FAILED, CANCELLED = "SUCCEEDED", "FAILED", "CANCELLED"
ACTIVE = (QUEUED, PENDING, RUNNING)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
RUN_STATUSES = (*ACTIVE, *TERMINAL)  # every status a run can have, in the order it goes through them


def utcnow() -> dt.datetime:
    """The service's clock default: aware UTC, second precision (what cron ticks and the pages show)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def to_db(value: dt.datetime | None) -> dt.datetime | None:
    """Naive UTC for storage: SQLite drops time zones, so both backends store the same thing."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value} given to the store; pass an aware UTC time")
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def from_db(value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC from storage."""
    return None if value is None else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class RecipeVersion:
    """One registered version of a recipe."""

    id: int
    name: str
    version: int
    yaml: str
    normalized: str
    fingerprint: str
    digest: str
    created_at: dt.datetime
    deleted_at: dt.datetime | None = None  # a deleted recipe's versions stay for its runs, hidden from reads


@dataclass(frozen=True)
class Schedule:
    """A cron schedule that rebuilds a recipe (a pinned version, or the newest when `version` is None); an
    incremental one builds each run on its newest successful run."""

    id: int
    recipe: str
    version: int | None
    cron: str
    paused: bool
    next_run_at: dt.datetime
    last_fired_at: dt.datetime | None
    created_at: dt.datetime
    incremental: bool
    overlap: str = "skip"  # skip | queue | cancel: a tick that finds the last run still in flight
    catch_up: str = "one"  # one | none: ticks missed while the service was down
    timezone: str = "UTC"  # the zone the cron fields are read in
    webhook_url: str | None = None
    skipped_ticks: int = 0
    deleted_at: dt.datetime | None = None


@dataclass(frozen=True)
class Run:
    """One rebuild: a recipe version submitted to Ray as one job writing one run directory."""

    id: int
    recipe: str
    version: int
    recipe_id: int
    status: str
    run_dir: str | None
    ray_job_id: str | None
    trigger: str
    schedule_id: int | None
    scheduled_for: dt.datetime | None
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    progress: dict[str, Any] | None
    base_run_id: int | None  # the run this one builds on (`corpusmill run --base`)
    base_note: str | None  # why a run of an incremental schedule has no base
    incremental: dict[str, Any] | None  # the finished run's stats.json "incremental" summary
    error_detail: str | None = None  # a failed job's traceback (or log tail); `error` is its one-line cause


RUN_JSON = ("progress", "incremental")  # runs' columns that hold JSON text


def _row(cls: type, row: Any) -> Any:
    data = dict(row._mapping)
    for key, value in data.items():
        if isinstance(value, dt.datetime):
            data[key] = from_db(value)
    for key in RUN_JSON if cls is Run else ():
        if data.get(key) is not None:
            data[key] = json.loads(data[key])
    return cls(**{f.name: data[f.name] for f in fields(cls)})


def _db_values(values: dict[str, Any], json_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if isinstance(value, dt.datetime):
            value = to_db(value)
        elif key in json_keys and value is not None:
            value = json.dumps(value, sort_keys=True)
        out[key] = value
    return out


def _claim_tick(conn: Any, schedule: Schedule, **values: Any) -> bool:
    """Move a live, unpaused schedule off the tick it was read at (compare-and-set on `next_run_at`), setting
    `values`; False when another thread or process moved it first."""
    claimed = conn.execute(
        update(schedules)
        .where(
            and_(
                schedules.c.id == schedule.id,
                schedules.c.next_run_at == to_db(schedule.next_run_at),
                schedules.c.paused.is_(False),
                schedules.c.deleted_at.is_(None),
            )
        )
        .values(**values)
    )
    return claimed.rowcount == 1


class Store:
    """Data access over one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # shared secrets

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """The value stored under `name`, made with `make` and stored on first use. Two services asking at
        once both get the value that was stored first (the loser's insert fails on the primary key)."""
        query = select(shared_secrets.c.value).where(shared_secrets.c.name == name)
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar()
        if found is not None:
            return str(found)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(shared_secrets).values(name=name, value=make(), created_at=to_db(utcnow()))
                )
        except IntegrityError:
            pass
        with self.engine.connect() as conn:
            return str(conn.execute(query).scalar_one())

    # recipes

    def add_recipe(
        self, name: str, yaml_text: str, normalized: str, fingerprint: str, digest: str, now: dt.datetime
    ) -> tuple[RecipeVersion, bool]:
        """A new version when the recipe differs from its newest version; else that version (created=False)."""
        for _attempt in range(3):
            latest = self.recipe(name)
            if latest is not None and latest.digest == digest:
                return latest, False
            with self.engine.connect() as conn:  # a deleted recipe's numbers are not reused
                top = conn.execute(select(func.max(recipes.c.version)).where(recipes.c.name == name)).scalar()
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(recipes).values(
                            name=name,
                            version=(top or 0) + 1,
                            yaml=yaml_text,
                            normalized=normalized,
                            fingerprint=fingerprint,
                            digest=digest,
                            created_at=to_db(now),
                        )
                    )
            except IntegrityError:  # another request took that version number; look again
                continue
            created = self.recipe(name)
            assert created is not None
            return created, True
        raise RuntimeError(f"recipe {name!r}: could not allocate a version number; retry the request")

    def recipe(
        self, name: str, version: int | None = None, include_deleted: bool = False
    ) -> RecipeVersion | None:
        """A version of a recipe, the newest when `version` is None (of a deleted recipe only when asked for)."""
        query = select(recipes).where(recipes.c.name == name)
        query = query if include_deleted else query.where(recipes.c.deleted_at.is_(None))
        query = query.where(recipes.c.version == version) if version is not None else query
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(recipes.c.version.desc()).limit(1)).first()
        return None if row is None else _row(RecipeVersion, row)

    def recipe_versions(self, name: str) -> list[RecipeVersion]:
        """Every version of a recipe, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(recipes)
                .where(and_(recipes.c.name == name, recipes.c.deleted_at.is_(None)))
                .order_by(recipes.c.version)
            )
            return [_row(RecipeVersion, r) for r in rows]

    def recipe_names(self) -> list[tuple[str, int, dt.datetime]]:
        """(name, newest version, when it was registered) for every recipe, by name."""
        query = (
            select(recipes.c.name, func.max(recipes.c.version), func.max(recipes.c.created_at))
            .where(recipes.c.deleted_at.is_(None))
            .group_by(recipes.c.name)
            .order_by(recipes.c.name)
        )
        with self.engine.connect() as conn:
            return [(n, v, from_db(c)) for n, v, c in conn.execute(query)]  # type: ignore[misc]

    def delete_recipe(self, name: str, now: dt.datetime | None = None) -> int:
        """Mark every version of a recipe deleted (hidden from reads, kept for the runs that point at them).
        Returns the versions marked; callers check first that no schedule or run in flight needs it."""
        condition = and_(recipes.c.name == name, recipes.c.deleted_at.is_(None))
        with self.engine.begin() as conn:
            marked = conn.execute(update(recipes).where(condition).values(deleted_at=to_db(now or utcnow())))
            return marked.rowcount

    # schedules

    def add_schedule(
        self,
        recipe: str,
        version: int | None,
        cron: str,
        paused: bool,
        next_run_at: dt.datetime,
        now: dt.datetime,
        incremental: bool = False,
        **policy: Any,
    ) -> Schedule:
        """Store a new schedule; `policy` sets its other columns (overlap, catch_up, timezone, webhook_url)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(schedules).values(
                    **_db_values(
                        {
                            "recipe": recipe,
                            "version": version,
                            "cron": cron,
                            "paused": paused,
                            "incremental": incremental,
                            "next_run_at": next_run_at,
                            "created_at": now,
                            **policy,
                        }
                    )
                )
            )
            schedule_id = result.inserted_primary_key[0]
        found = self.schedule(schedule_id)
        assert found is not None
        return found

    def schedule(self, schedule_id: int, include_deleted: bool = False) -> Schedule | None:
        """One schedule (a deleted one only when asked for)."""
        query = select(schedules).where(schedules.c.id == schedule_id)
        query = query if include_deleted else query.where(schedules.c.deleted_at.is_(None))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _row(Schedule, row)

    def schedules(self, include_deleted: bool = False) -> list[Schedule]:
        """Every schedule, oldest first (deleted ones only when asked for)."""
        query = select(schedules)
        query = query if include_deleted else query.where(schedules.c.deleted_at.is_(None))
        with self.engine.connect() as conn:
            return [_row(Schedule, r) for r in conn.execute(query.order_by(schedules.c.id))]

    def update_schedule(self, schedule_id: int, **values: Any) -> Schedule | None:
        """Change a schedule's fields (cron, paused, incremental, next_run_at)."""
        with self.engine.begin() as conn:
            conn.execute(update(schedules).where(schedules.c.id == schedule_id).values(**_db_values(values)))
        return self.schedule(schedule_id)

    def delete_schedule(self, schedule_id: int, now: dt.datetime | None = None) -> bool:
        """Mark a schedule deleted (it never fires again and is no longer listed); the row stays, so its id is
        never reused and its runs keep their schedule_id. False if there is no such (undeleted) schedule."""
        condition = and_(schedules.c.id == schedule_id, schedules.c.deleted_at.is_(None))
        with self.engine.begin() as conn:
            deleted = conn.execute(
                update(schedules).where(condition).values(deleted_at=to_db(now or utcnow()))
            )
            return deleted.rowcount == 1

    def due_schedules(self, now: dt.datetime) -> list[Schedule]:
        """Unpaused, undeleted schedules whose next tick is at or before `now`."""
        query = select(schedules).where(
            and_(
                schedules.c.paused.is_(False),
                schedules.c.deleted_at.is_(None),
                schedules.c.next_run_at <= to_db(now),
            )
        )
        with self.engine.connect() as conn:
            return [_row(Schedule, r) for r in conn.execute(query.order_by(schedules.c.id))]

    def fire_schedule(
        self,
        schedule: Schedule,
        next_run_at: dt.datetime,
        recipe: RecipeVersion,
        now: dt.datetime,
        place: Callable[[int], tuple[str, str]],
        base_run_id: int | None = None,
        base_note: str | None = None,
    ) -> Run | None:
        """Claim the schedule's current tick and create its run (built on `base_run_id` when given), atomically;
        None if the tick was taken already."""
        try:
            with self.engine.begin() as conn:
                if not _claim_tick(conn, schedule, next_run_at=to_db(next_run_at), last_fired_at=to_db(now)):
                    return None
                run_id = self._insert_run(
                    conn,
                    recipe,
                    "schedule",
                    schedule.id,
                    schedule.next_run_at,
                    now,
                    place,
                    base_run_id=base_run_id,
                    base_note=base_note,
                )
        except IntegrityError:
            return None
        return self.run(run_id)

    def skip_tick(self, schedule: Schedule, next_run_at: dt.datetime) -> bool:
        """Claim the schedule's current tick without firing it (counted in skipped_ticks); False if the tick was
        taken already. The same compare-and-set as fire_schedule, so a skipped tick is skipped once."""
        with self.engine.begin() as conn:
            return _claim_tick(
                conn, schedule, next_run_at=to_db(next_run_at), skipped_ticks=schedules.c.skipped_ticks + 1
            )

    def active_schedule_runs(self, schedule_id: int) -> list[Run]:
        """The schedule's runs not yet ended (QUEUED, PENDING or RUNNING), oldest first."""
        query = select(runs).where(and_(runs.c.schedule_id == schedule_id, runs.c.status.in_(ACTIVE)))
        with self.engine.connect() as conn:
            return [_row(Run, r) for r in conn.execute(query.order_by(runs.c.id))]

    def waiting_runs(self) -> list[Run]:
        """Scheduled runs held back (QUEUED, never claimed for submission) whose schedule has no older run in
        flight any more: the queue-policy runs that may start now, oldest first."""
        older = runs.alias("older")
        in_flight = (
            select(older.c.id)
            .where(
                and_(
                    older.c.schedule_id == runs.c.schedule_id,
                    older.c.id < runs.c.id,
                    older.c.status.in_(ACTIVE),
                )
            )
            .exists()
        )
        query = select(runs).where(
            and_(
                runs.c.status == QUEUED,
                runs.c.schedule_id.is_not(None),
                runs.c.submitted_at.is_(None),
                ~in_flight,
            )
        )
        with self.engine.connect() as conn:
            return [_row(Run, r) for r in conn.execute(query.order_by(runs.c.id))]

    def claim_run(self, run_id: int, now: dt.datetime) -> bool:
        """Take a QUEUED run for submission (stamps submitted_at); False if another thread or process took it."""
        condition = and_(runs.c.id == run_id, runs.c.status == QUEUED, runs.c.submitted_at.is_(None))
        with self.engine.begin() as conn:
            return conn.execute(update(runs).where(condition).values(submitted_at=to_db(now))).rowcount == 1

    # runs

    def add_run(
        self, recipe: RecipeVersion, now: dt.datetime, place: Callable[[int], tuple[str, str]]
    ) -> Run:
        """A new QUEUED run of a recipe version, started by hand."""
        with self.engine.begin() as conn:
            run_id = self._insert_run(conn, recipe, "manual", None, None, now, place)
        found = self.run(run_id)
        assert found is not None
        return found

    @staticmethod
    def _insert_run(
        conn: Any,
        recipe: RecipeVersion,
        trigger: str,
        schedule_id: int | None,
        scheduled_for: dt.datetime | None,
        now: dt.datetime,
        place: Callable[[int], tuple[str, str]],
        base_run_id: int | None = None,
        base_note: str | None = None,
    ) -> int:
        result = conn.execute(
            insert(runs).values(
                recipe=recipe.name,
                version=recipe.version,
                recipe_id=recipe.id,
                status=QUEUED,
                trigger=trigger,
                schedule_id=schedule_id,
                scheduled_for=to_db(scheduled_for),
                created_at=to_db(now),
                base_run_id=base_run_id,
                base_note=base_note,
            )
        )
        run_id = int(result.inserted_primary_key[0])
        run_dir, job_id = place(run_id)
        conn.execute(update(runs).where(runs.c.id == run_id).values(run_dir=run_dir, ray_job_id=job_id))
        return run_id

    def run(self, run_id: int) -> Run | None:
        """One run."""
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        return None if row is None else _row(Run, row)

    def last_schedule_run(self, schedule_id: int, status: str | None = None) -> Run | None:
        """The newest (last created) run of a schedule, optionally only among runs in `status`."""
        condition = runs.c.schedule_id == schedule_id
        if status is not None:
            condition = and_(condition, runs.c.status == status)
        query = select(runs).where(condition).order_by(runs.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _row(Run, row)

    def runs(
        self,
        statuses: Iterable[str] | None = None,
        recipe: str | None = None,
        limit: int | None = None,
        before_id: int | None = None,
        schedule_id: int | None = None,
    ) -> list[Run]:
        """Runs, newest first, optionally only some statuses, one recipe or one schedule's, or only older than
        `before_id` (a page boundary that new runs, with higher ids, never move)."""
        query = select(runs)
        if schedule_id is not None:
            query = query.where(runs.c.schedule_id == schedule_id)
        if before_id is not None:
            query = query.where(runs.c.id < before_id)
        if statuses is not None:
            query = query.where(runs.c.status.in_(list(statuses)))
        if recipe is not None:
            query = query.where(runs.c.recipe == recipe)
        query = query.order_by(runs.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_row(Run, r) for r in conn.execute(query)]

    def update_run(self, run_id: int, expect: Iterable[str] | None = None, **values: Any) -> bool:
        """Change a run, only while its status is one of `expect` (when given); True if the row changed."""
        condition = runs.c.id == run_id
        if expect is not None:
            condition = and_(condition, runs.c.status.in_(list(expect)))
        with self.engine.begin() as conn:
            changed = conn.execute(update(runs).where(condition).values(**_db_values(values, RUN_JSON)))
            return changed.rowcount == 1
