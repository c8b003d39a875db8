"""Cron schedules that rebuild a recipe: each tick fires at most once, across restarts and service replicas.

A schedule stores its next tick. `tick(now)` takes every unpaused schedule whose next tick has passed and, in
one transaction, moves the tick forward (only if it is still the tick it read) and inserts the tick's run; a
unique (schedule, tick) constraint on runs backs this up. Whoever loses that race, a second thread or a
second process on the same database, fires nothing. Ticks missed while the service was down are coalesced
into one run at start-up rather than replayed one by one: a rebuild reflects the data now, so ten missed
nightly ticks need one rebuild, not ten. Resuming a paused schedule starts from the next tick after resuming.
Cron expressions are evaluated in UTC. The run of an incremental schedule's tick builds on the schedule's
newest successful run, so it reads only the input files that appeared since (see runs.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from croniter import croniter

from corpusmill.service.runs import RunManager
from corpusmill.service.store import Run, Schedule, Store

logger = logging.getLogger(__name__)


class ScheduleError(ValueError):
    """A schedule request that cannot be honoured (bad cron expression, unknown recipe)."""


def check_cron(cron: str) -> str:
    """A valid five-field cron expression, stripped; ScheduleError says what is wrong otherwise."""
    cron = " ".join(cron.split())
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ScheduleError(
            f"{cron!r} is not a cron expression; use five fields (minute hour day-of-month month day-of-week), "
            "e.g. '0 3 * * *' for 03:00 UTC every day"
        )
    return cron


def next_tick(cron: str, after: dt.datetime) -> dt.datetime:
    """The first tick of `cron` strictly after `after` (aware UTC)."""
    return croniter(cron, after.astimezone(dt.UTC)).get_next(dt.datetime).astimezone(dt.UTC)


class Scheduler:
    """Creates, changes and fires schedules."""

    def __init__(self, store: Store, manager: RunManager, clock: Callable[[], dt.datetime]) -> None:
        self.store = store
        self.manager = manager
        self.clock = clock

    def add(
        self, recipe: str, version: int | None, cron: str, paused: bool = False, incremental: bool = False
    ) -> Schedule:
        """A new schedule of a registered recipe (a pinned version, or the newest at each tick)."""
        cron = check_cron(cron)
        if self.store.recipe(recipe, version) is None:
            what = f"version {version} of recipe {recipe!r}" if version is not None else f"recipe {recipe!r}"
            raise ScheduleError(f"{what} is not registered; POST it to /api/recipes first")
        now = self.clock()
        return self.store.add_schedule(
            recipe, version, cron, paused, next_tick(cron, now), now, incremental=incremental
        )

    def change(
        self,
        schedule: Schedule,
        cron: str | None = None,
        paused: bool | None = None,
        incremental: bool | None = None,
    ) -> Schedule:
        """New cron expression, pause switch and/or incremental switch; the next tick is recomputed from now when
        the cron expression changes or the schedule is resumed."""
        new_cron = check_cron(cron) if cron is not None else schedule.cron
        new_paused = schedule.paused if paused is None else paused
        new_incremental = schedule.incremental if incremental is None else incremental
        values: dict[str, object] = {"cron": new_cron, "paused": new_paused, "incremental": new_incremental}
        if new_cron != schedule.cron or (schedule.paused and not new_paused):
            values["next_run_at"] = next_tick(new_cron, self.clock())
        changed = self.store.update_schedule(schedule.id, **values)
        assert changed is not None
        return changed

    def tick(self, now: dt.datetime | None = None) -> list[Run]:
        """Fire every due schedule once; returns the runs created (and submitted) by this call."""
        now = now or self.clock()
        fired = []
        for schedule in self.store.due_schedules(now):
            recipe = self.store.recipe(schedule.recipe, schedule.version)
            if recipe is None:  # recipes are never deleted, so only a hand-edited database gets here
                logger.warning(
                    "schedule %d: recipe %s is not registered; skipping", schedule.id, schedule.recipe
                )
                continue
            base_run_id, base_note = (
                self.manager.choose_base(schedule.id, recipe) if schedule.incremental else (None, None)
            )
            run = self.store.fire_schedule(
                schedule,
                next_tick(schedule.cron, now),
                recipe,
                now,
                self.manager.place(recipe.name),
                base_run_id=base_run_id,
                base_note=base_note,
            )
            if run is None:
                continue  # another thread or process fired this tick
            logger.info(
                "schedule %d fired for %s: run %d of %s:v%d%s",
                schedule.id,
                schedule.next_run_at.isoformat(),
                run.id,
                recipe.name,
                recipe.version,
                f" on run {base_run_id}" if base_run_id else "",
            )
            fired.append(self.manager.submit(run))
        return fired
