"""Cron schedules that rebuild a recipe: each tick fires at most once, across restarts and service replicas.

A schedule stores its next tick. `tick(now)` takes every unpaused, undeleted schedule whose next tick has
passed and, in one transaction, moves the tick forward (only if it is still the tick it read) and inserts the
tick's run; a unique (schedule, tick) constraint on runs backs this up. Whoever loses that race, a second
thread or a second process on the same database, fires nothing. A tick that fires no run (see below) is
claimed the same way, so it is skipped once, and counted in the schedule's `skipped_ticks`.

When a tick finds the schedule's previous run still queued or running, its `overlap` policy decides:
`skip` (the default) fires nothing for this tick; `queue` creates the run but holds it QUEUED until the
older run has ended, and this loop submits it then (at most one run waits: a tick that finds one waiting
is skipped, so a rebuild longer than its interval does not pile up runs); `cancel` cancels the older run, as
the cancel API does, and starts the new one.

Ticks missed while the service was down follow the schedule's `catch_up` rule. `one` (the default): the
missed ticks coalesce into one run at start-up rather than being replayed one by one, since a rebuild
reflects the data now, so ten missed nightly ticks need one rebuild, not ten. `none`: missed ticks fire
nothing and the schedule waits for its next tick. A tick counts as missed when a later tick is also due, or
when it is found more than LATE_GRACE after its time. Resuming a paused schedule starts from the next tick
after resuming; while paused, a schedule has no next tick to show (the API reports `next_run_at: null`).

Cron expressions have five fields or are one of the macros in MACROS, and are read in the schedule's IANA
`timezone` (default UTC): `0 3 * * *` in Europe/Berlin fires at 03:00 Berlin time on both sides of a DST
change. Ticks are stored and returned in UTC. The run of an incremental schedule's tick builds on the
schedule's newest successful run, so it reads only the input files that appeared since (see runs.py); a
held run picks its base when it is released. A schedule with a `webhook_url` is notified when one of its
runs fails or succeeds with report warnings (see notify.py).

A deleted schedule stays in the database, marked `deleted_at`: it never fires again and is not listed, but
its id is never reused and its runs keep naming it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from corpusmill.service.notify import WebhookNotifier
from corpusmill.service.runs import RunManager, RunStateError
from corpusmill.service.store import QUEUED, Run, Schedule, Store

logger = logging.getLogger(__name__)

OVERLAP = ("skip", "queue", "cancel")
CATCH_UP = ("one", "none")
MACROS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually")
LATE_GRACE = dt.timedelta(minutes=2)  # a tick found later than this counts as missed (catch_up "none")


class ScheduleError(ValueError):
    """A schedule request that cannot be honoured (bad cron expression or time zone, unknown recipe)."""


def check_cron(cron: str) -> str:
    """A valid five-field cron expression or macro, whitespace normalised; ScheduleError says what is wrong."""
    cron = " ".join(cron.split())
    if cron.startswith("@"):
        if cron.lower() in MACROS:
            return cron.lower()
        raise ScheduleError(f"{cron!r} is not a cron macro; use one of {', '.join(MACROS)}")
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ScheduleError(
            f"{cron!r} is not a cron expression; use five fields (minute hour day-of-month month day-of-week), "
            f"e.g. '0 3 * * *' for 03:00 every day, or one of {', '.join(MACROS)}"
        )
    return cron


def check_timezone(name: str) -> str:
    """A valid IANA time zone name; ScheduleError otherwise."""
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"{name!r} is not a time zone; use an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'"
        ) from None
    return name


def check_choice(field: str, value: str, allowed: tuple[str, ...]) -> str:
    """`value` if it is one of `allowed`; ScheduleError naming the field otherwise."""
    if value not in allowed:
        raise ScheduleError(f"{field} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def check_webhook(url: str | None) -> str | None:
    """An http(s) URL with a host, or None for none (an empty string clears a schedule's hook)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ScheduleError(f"webhook_url must be an http:// or https:// URL with a host, not {url!r}")
    return url


def next_tick(cron: str, after: dt.datetime, timezone: str = "UTC") -> dt.datetime:
    """The first tick of `cron`, read in `timezone`, strictly after `after`; aware UTC."""
    local = after.astimezone(ZoneInfo(timezone))
    return croniter(cron, local).get_next(dt.datetime).astimezone(dt.UTC)


class Scheduler:
    """Creates, changes and fires schedules, and starts the runs a queue-policy schedule held back."""

    def __init__(self, store: Store, manager: RunManager, clock: Callable[[], dt.datetime]) -> None:
        self.store = store
        self.manager = manager
        self.clock = clock
        self.notifier = WebhookNotifier(store)
        manager.on_end.append(self.notifier)

    def add(
        self,
        recipe: str,
        version: int | None,
        cron: str,
        paused: bool = False,
        incremental: bool = False,
        overlap: str = "skip",
        catch_up: str = "one",
        timezone: str = "UTC",
        webhook_url: str | None = None,
    ) -> Schedule:
        """A new schedule of a registered recipe (a pinned version, or the newest at each tick)."""
        cron = check_cron(cron)
        timezone = check_timezone(timezone)
        policy = {
            "overlap": check_choice("overlap", overlap, OVERLAP),
            "catch_up": check_choice("catch_up", catch_up, CATCH_UP),
            "timezone": timezone,
            "webhook_url": check_webhook(webhook_url),
        }
        if self.store.recipe(recipe, version) is None:
            what = f"version {version} of recipe {recipe!r}" if version is not None else f"recipe {recipe!r}"
            raise ScheduleError(f"{what} is not registered; POST it to /api/recipes first")
        now = self.clock()
        return self.store.add_schedule(
            recipe,
            version,
            cron,
            paused,
            next_tick(cron, now, timezone),
            now,
            incremental=incremental,
            **policy,
        )

    def change(
        self,
        schedule: Schedule,
        cron: str | None = None,
        paused: bool | None = None,
        incremental: bool | None = None,
        overlap: str | None = None,
        catch_up: str | None = None,
        timezone: str | None = None,
        webhook_url: str | None = None,
    ) -> Schedule:
        """Change the fields given (None: unchanged; webhook_url "" removes the hook). The next tick is
        recomputed from now when the cron expression or time zone changes or the schedule is resumed."""
        values: dict[str, object] = {
            "cron": check_cron(cron) if cron is not None else schedule.cron,
            "timezone": check_timezone(timezone) if timezone is not None else schedule.timezone,
            "paused": schedule.paused if paused is None else paused,
            "incremental": schedule.incremental if incremental is None else incremental,
        }
        if overlap is not None:
            values["overlap"] = check_choice("overlap", overlap, OVERLAP)
        if catch_up is not None:
            values["catch_up"] = check_choice("catch_up", catch_up, CATCH_UP)
        if webhook_url is not None:
            values["webhook_url"] = check_webhook(webhook_url)
        moved = values["cron"] != schedule.cron or values["timezone"] != schedule.timezone
        if moved or (schedule.paused and not values["paused"]):
            values["next_run_at"] = next_tick(str(values["cron"]), self.clock(), str(values["timezone"]))
        changed = self.store.update_schedule(schedule.id, **values)
        assert changed is not None
        return changed

    def tick(self, now: dt.datetime | None = None) -> list[Run]:
        """Fire every due schedule once and start the held runs whose turn has come; returns the runs this call
        created or started (a held run is returned QUEUED)."""
        now = now or self.clock()
        runs = [run for schedule in self.store.due_schedules(now) if (run := self._fire(schedule, now))]
        return runs + self.release(now)

    def missed(self, schedule: Schedule, now: dt.datetime) -> bool:
        """Whether the schedule's due tick was missed (the service was down or stalled over it) rather than
        merely reached: a later tick is due too, or it is more than LATE_GRACE old."""
        later = next_tick(schedule.cron, schedule.next_run_at, schedule.timezone)
        return later <= now or now - schedule.next_run_at > LATE_GRACE

    def _skip(self, schedule: Schedule, following: dt.datetime, why: str) -> None:
        if self.store.skip_tick(schedule, following):
            logger.info(
                "schedule %d: tick %s fires nothing: %s", schedule.id, schedule.next_run_at.isoformat(), why
            )

    def _fire(self, schedule: Schedule, now: dt.datetime) -> Run | None:
        """Fire one due tick under the schedule's catch-up and overlap rules; the run created, if any."""
        following = next_tick(schedule.cron, now, schedule.timezone)
        if schedule.catch_up == "none" and self.missed(schedule, now):
            self._skip(schedule, following, "missed while the service was down (catch_up none)")
            return None
        active = self.store.active_schedule_runs(schedule.id)
        hold = False
        if active:
            waiting = [r for r in active if r.status == QUEUED and r.submitted_at is None]
            if schedule.overlap == "skip" or (schedule.overlap == "queue" and waiting):
                held = (
                    f"run {waiting[0].id} already waits" if waiting else f"run {active[-1].id} is in flight"
                )
                self._skip(schedule, following, f"{held} (overlap {schedule.overlap})")
                return None
            if schedule.overlap == "cancel":
                self._cancel(schedule, active)
            else:
                hold = True
        recipe = self.store.recipe(schedule.recipe, schedule.version)
        # A recipe a schedule uses cannot be deleted, so only a hand-edited database gets here.
        if recipe is None:
            logger.warning("schedule %d: recipe %s is not registered; skipping", schedule.id, schedule.recipe)
            return None
        base_run_id, base_note = (
            self.manager.choose_base(schedule.id, recipe) if schedule.incremental else (None, None)
        )
        run = self.store.fire_schedule(
            schedule,
            following,
            recipe,
            now,
            self.manager.place(recipe.name),
            base_run_id=base_run_id,
            base_note=base_note,
        )
        if run is None:
            return None  # another thread or process fired this tick
        logger.info(
            "schedule %d fired for %s: run %d of %s:v%d%s%s",
            schedule.id,
            schedule.next_run_at.isoformat(),
            run.id,
            recipe.name,
            recipe.version,
            f" on run {base_run_id}" if base_run_id else "",
            f", waiting for run {active[-1].id} to end" if hold else "",
        )
        if hold or not self.store.claim_run(run.id, now):
            return run  # held, or another process's release loop took it
        return self.manager.submit(run)

    def _cancel(self, schedule: Schedule, active: list[Run]) -> None:
        for old in active:
            try:
                self.manager.cancel(old)
            except RunStateError:
                continue  # it ended meanwhile
            logger.info(
                "schedule %d: cancelled run %d for its new tick (overlap cancel)", schedule.id, old.id
            )

    def release(self, now: dt.datetime | None = None) -> list[Run]:
        """Submit the held runs whose schedule has no older run in flight any more (and any scheduled run a
        crash left unsubmitted); a held run of an incremental schedule picks its base now."""
        now = now or self.clock()
        started = []
        for run in self.store.waiting_runs():
            if not self.store.claim_run(run.id, now):
                continue
            schedule = self.store.schedule(run.schedule_id or 0, include_deleted=True)
            recipe = self.store.recipe(run.recipe, run.version)
            if schedule is not None and schedule.incremental and recipe is not None:
                base_run_id, base_note = self.manager.choose_base(schedule.id, recipe)
                self.store.update_run(run.id, expect=[QUEUED], base_run_id=base_run_id, base_note=base_note)
            claimed = self.store.run(run.id)
            assert claimed is not None
            logger.info("run %d of schedule %s: its turn came; submitting", run.id, run.schedule_id)
            started.append(self.manager.submit(claimed))
        return started
