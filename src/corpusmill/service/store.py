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

from corpusmill.service.db import recipes, runs, schedules

QUEUED, PENDING, RUNNING = "QUEUED", "PENDING", "RUNNING"
SUCCEEDED, FAILED, CANCELLED = "SUCCEEDED", "FAILED", "CANCELLED"
ACTIVE = (QUEUED, PENDING, RUNNING)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)


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


class Store:
    """Data access over one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # recipes

    def add_recipe(
        self, name: str, yaml_text: str, normalized: str, fingerprint: str, digest: str, now: dt.datetime
    ) -> tuple[RecipeVersion, bool]:
        """A new version when the recipe differs from its newest version; else that version (created=False)."""
        for _attempt in range(3):
            latest = self.recipe(name)
            if latest is not None and latest.digest == digest:
                return latest, False
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(recipes).values(
                            name=name,
                            version=(latest.version + 1) if latest else 1,
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

    def recipe(self, name: str, version: int | None = None) -> RecipeVersion | None:
        """A version of a recipe, the newest when `version` is None."""
        query = select(recipes).where(recipes.c.name == name)
        query = query.where(recipes.c.version == version) if version is not None else query
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(recipes.c.version.desc()).limit(1)).first()
        return None if row is None else _row(RecipeVersion, row)

    def recipe_versions(self, name: str) -> list[RecipeVersion]:
        """Every version of a recipe, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(recipes).where(recipes.c.name == name).order_by(recipes.c.version))
            return [_row(RecipeVersion, r) for r in rows]

    def recipe_names(self) -> list[tuple[str, int, dt.datetime]]:
        """(name, newest version, when it was registered) for every recipe, by name."""
        query = (
            select(recipes.c.name, func.max(recipes.c.version), func.max(recipes.c.created_at))
            .group_by(recipes.c.name)
            .order_by(recipes.c.name)
        )
        with self.engine.connect() as conn:
            return [(n, v, from_db(c)) for n, v, c in conn.execute(query)]  # type: ignore[misc]

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
    ) -> Schedule:
        """Store a new schedule."""
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
                        }
                    )
                )
            )
            schedule_id = result.inserted_primary_key[0]
        found = self.schedule(schedule_id)
        assert found is not None
        return found

    def schedule(self, schedule_id: int) -> Schedule | None:
        """One schedule."""
        with self.engine.connect() as conn:
            row = conn.execute(select(schedules).where(schedules.c.id == schedule_id)).first()
        return None if row is None else _row(Schedule, row)

    def schedules(self) -> list[Schedule]:
        """Every schedule, oldest first."""
        with self.engine.connect() as conn:
            return [_row(Schedule, r) for r in conn.execute(select(schedules).order_by(schedules.c.id))]

    def update_schedule(self, schedule_id: int, **values: Any) -> Schedule | None:
        """Change a schedule's fields (cron, paused, incremental, next_run_at)."""
        with self.engine.begin() as conn:
            conn.execute(update(schedules).where(schedules.c.id == schedule_id).values(**_db_values(values)))
        return self.schedule(schedule_id)

    def delete_schedule(self, schedule_id: int) -> bool:
        """Remove a schedule; its past runs stay, with schedule_id cleared."""
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.schedule_id == schedule_id).values(schedule_id=None))
            return conn.execute(schedules.delete().where(schedules.c.id == schedule_id)).rowcount == 1

    def due_schedules(self, now: dt.datetime) -> list[Schedule]:
        """Unpaused schedules whose next tick is at or before `now`."""
        query = select(schedules).where(
            and_(schedules.c.paused.is_(False), schedules.c.next_run_at <= to_db(now))
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
                claimed = conn.execute(
                    update(schedules)
                    .where(
                        and_(
                            schedules.c.id == schedule.id,
                            schedules.c.next_run_at == to_db(schedule.next_run_at),
                            schedules.c.paused.is_(False),
                        )
                    )
                    .values(next_run_at=to_db(next_run_at), last_fired_at=to_db(now))
                )
                if claimed.rowcount != 1:
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
        self, statuses: Iterable[str] | None = None, recipe: str | None = None, limit: int | None = None
    ) -> list[Run]:
        """Runs, newest first, optionally only some statuses or one recipe."""
        query = select(runs)
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
