"""Runs as Ray jobs: submit a recipe version, follow its job to the end, cancel it, recover after a restart.

A run row is created (QUEUED) with its run directory and its Ray submission id before anything is sent to
Ray, and the job is submitted under that id. So a service that dies between the two steps finds, on restart,
either a job it can re-attach to by id or none, in which case it submits then: never two jobs for one run.
The poller asks Ray about every PENDING or RUNNING run; while a job runs it stores a progress snapshot from the
run's stage markers, and when the job ends it records why. A job that exits 0 without the run's
`manifest.json` (written last by the runner) is a failed run, not a finished one.

A run of an incremental schedule builds on the schedule's newest successful run (`corpusmill run --base`):
only input files the base did not have are read, and the result equals a full rebuild. A base that cannot
be used (its run directory is gone, it predates incremental builds, or the recipe changed its output
fingerprint since) makes the run a full build, and the run's `base_note` says why, so one lost directory
never fails every later tick; nor does a base the CLI refuses, since after a run fails on a base the next
one is a full build. A finished run keeps its stats.json "incremental" summary (new and vanished input
files, reused parts) in its row.

The runs root may be a URI (`s3://bucket/runs`): run directories are then prefixes on object storage, which
the job writes to (`--output s3://...`) and the service reads from. The submitted recipe is put there as one
object; since `corpusmill run` reads its recipe from a local file, such a job starts with
`corpusmill run`, which reads it from there on whichever node runs the job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import shlex
from collections.abc import Callable
from typing import Any

from upath import UPath

from corpusmill.core.atomic import atomic_open
from corpusmill.core.location import RunPath, ensure_dir
from corpusmill.pipelines.borrow import PARTS_FILE
from corpusmill.service.artifacts import run_location
from corpusmill.service.jobs import JobNotFound, JobState, RayJobs
from corpusmill.service.progress import ProgressReader, planned_steps
from corpusmill.service.run_errors import error_cause, strip_ansi, traceback_text
from corpusmill.service.store import (
    CANCELLED,
    FAILED,
    PENDING,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    RecipeVersion,
    Run,
    Store,
)

logger = logging.getLogger(__name__)

RECIPE_FILE = "submitted-recipe.yaml"
LOG_TAIL_LINES = 20
MAX_ERROR_CHARS = 6000
MAX_LISTED_FILES = 200  # input file names kept per run; stats.json (an artifact) lists them all


class RunStateError(RuntimeError):
    """The run is in a state that does not allow the request (e.g. cancelling a finished run)."""


def failure_summary(state: JobState, logs: str | None) -> tuple[str, str | None]:
    """Why a job failed, for people, as (error, error_detail): the error is the one-line cause (the CLI's
    `error:` line or the last exception line, colour codes stripped) followed by Ray's status message; the
    detail is the job's traceback (or its log tail), kept apart so the cause is what a reader sees first."""
    cause = error_cause(logs or "")
    # Ray's message repeats the whole log after this phrase; the detail holds the log.
    message = strip_ansi(state.message or "no message").strip().split(", last available logs")[0]
    message = (message.splitlines() or ["no message"])[0]
    exit_code = f" (exit code {state.exit_code})" if state.exit_code is not None else ""
    error = "\n\n".join([*([cause] if cause else []), f"Ray job {state.status}{exit_code}: {message}"])
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    return error, traceback_text(logs or "", MAX_ERROR_CHARS, LOG_TAIL_LINES)


def failure_reason(state: JobState, logs: str | None) -> str:
    """The cause, Ray's status message and the tail of the job's log, in one text (see failure_summary)."""
    error, _ = failure_summary(state, logs)
    lines = [line.rstrip() for line in strip_ansi(logs or "").splitlines() if line.strip()]
    reason = error + ("\n\nlog tail:\n" + "\n".join(lines[-LOG_TAIL_LINES:]) if lines else "")
    return reason if len(reason) <= MAX_ERROR_CHARS else reason[: MAX_ERROR_CHARS - 1] + "…"


def incremental_summary(run_dir: str | os.PathLike[str] | UPath) -> dict[str, Any] | None:
    """A finished run's stats.json "incremental" section, its file lists cut to MAX_LISTED_FILES names with
    their full counts beside them; None for a full build (or a run without stats.json)."""
    try:
        text = (run_location(run_dir) / "stats.json").read_text(encoding="utf-8")
        section = json.loads(text).get("incremental")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(section, dict):
        return None
    summary: dict[str, Any] = {k: section.get(k) for k in ("base", "parts", "reused_parts", "taken_down")}
    for key, count in (("added_files", "added_count"), ("removed_files", "removed_count")):
        names = [str(name) for name in section.get(key) or []]
        summary[key], summary[count] = names[:MAX_LISTED_FILES], len(names)
    return summary


class RunManager:
    """Submits runs to Ray and keeps their rows in step with their jobs."""

    def __init__(
        self,
        store: Store,
        jobs: RayJobs,
        runs_root: RunPath,
        python: str,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.runs_root = runs_root
        self.python = python
        self.clock = clock
        self.progress = ProgressReader()
        self._planned: dict[int, list[dict]] = {}  # recipe version id -> its steps (parsing costs ~0.1 s)
        self._unreachable_logged = False
        # Called with each run this service saw end (failed to submit, or its job ended), e.g. to notify.
        self.on_end: list[Callable[[Run], None]] = []

    def _ended(self, run_id: int) -> None:
        """Tell the listeners that a run ended; a listener's error is logged, never the run's problem."""
        if not self.on_end:
            return
        run = self.store.run(run_id)
        for listener in self.on_end if run is not None else ():
            try:
                listener(run)
            except Exception:
                logger.exception("run %d: a listener of ended runs failed", run_id)

    def place(self, recipe: str) -> Callable[[int], tuple[str, str]]:
        """Run directory and Ray submission id of a new run, from its row id (the random suffix keeps ids unique
        across databases sharing a cluster)."""

        def _place(run_id: int) -> tuple[str, str]:
            run_dir = self.runs_root / recipe / f"run-{run_id:06d}"
            return str(run_dir), f"corpusmill-{recipe}-{run_id}-{secrets.token_hex(4)}"

        return _place

    def entrypoint(self, recipe_file: RunPath, run_dir: RunPath, base: RunPath | None = None) -> str:
        """The job's command line: the ordinary CLI, on the cluster the job runs in (building on `base`, a
        finished run directory, when given); it reads a recipe on object storage where it lies."""
        command = [self.python, "-m", "corpusmill.cli", "run", str(recipe_file), "--output", str(run_dir)]
        if base is not None:
            command += ["--base", str(base)]
        return shlex.join([*command, "--engine", "ray", "--address", "auto"])

    def base_problem(self, base: Run, recipe: RecipeVersion) -> str | None:
        """Why `recipe` cannot be built on the finished run `base`; None when it can."""
        if not base.run_dir or not (run_location(base.run_dir) / "manifest.json").is_file():
            return f"the directory of run {base.id} ({base.run_dir or 'none'}) is gone"
        if not (run_location(base.run_dir) / PARTS_FILE).is_file():
            return f"run {base.id} was made by an earlier corpusmill that did not record its parts ({PARTS_FILE})"
        built = self.store.recipe(base.recipe, base.version)
        if built is None or built.name != recipe.name or built.fingerprint != recipe.fingerprint:
            return (
                f"{recipe.name} v{recipe.version} does not build the output that run {base.id} "
                f"({base.recipe} v{base.version}) built: its fingerprint differs"
            )
        return None

    def choose_base(self, schedule_id: int, recipe: RecipeVersion) -> tuple[int | None, str | None]:
        """What the next run of an incremental schedule builds on: (base run id, None), or (None, why not).

        The base is the schedule's newest successful run. When the schedule's last run failed while building on
        that same base, the next one is a full build, so a base the CLI refuses costs one failed run, not all.
        """
        base = self.store.last_schedule_run(schedule_id, status=SUCCEEDED)
        if base is None:
            return None, f"full build: schedule {schedule_id} has no successful run to build on yet"
        problem = self.base_problem(base, recipe)
        if problem is not None:
            return None, f"full build: {problem}"
        last = self.store.last_schedule_run(schedule_id)
        if last is not None and last.status == FAILED and last.base_run_id == base.id:
            return None, f"full build: the last run ({last.id}) failed building on run {base.id}"
        return base.id, None

    def _base_dir(self, run: Run, recipe: RecipeVersion) -> RunPath | None:
        """The run directory `run` builds on, checked again just before submitting; a base that became
        unusable since the run was created (e.g. on a resubmit after a restart) makes it a full build."""
        if run.base_run_id is None:
            return None
        base = self.store.run(run.base_run_id)
        problem = f"run {run.base_run_id} is gone" if base is None else self.base_problem(base, recipe)
        if problem is None and base is not None and base.run_dir:
            return run_location(base.run_dir)
        logger.warning("run %d: cannot build on run %d (%s); full build", run.id, run.base_run_id, problem)
        self.store.update_run(run.id, expect=[QUEUED], base_run_id=None, base_note=f"full build: {problem}")
        return None

    def trigger(self, recipe: RecipeVersion) -> Run:
        """Create a run of this recipe version and submit it now."""
        run = self.store.add_run(recipe, self.clock(), self.place(recipe.name))
        return self.submit(run)

    def submit(self, run: Run) -> Run:
        """Write the recipe into the run directory and submit the job; a refusal fails the run with Ray's reason."""
        recipe = self.store.recipe(run.recipe, run.version)
        assert recipe is not None and run.run_dir and run.ray_job_id
        run_dir = run_location(run.run_dir)
        recipe_file = run_dir / RECIPE_FILE
        try:
            base_dir = self._base_dir(run, recipe)
            ensure_dir(run_dir)
            with atomic_open(recipe_file, "w", encoding="utf-8") as handle:  # one whole object on a store
                handle.write(recipe.normalized)
            self.jobs.submit(
                run.ray_job_id,
                self.entrypoint(recipe_file, run_dir, base_dir),
                {"corpusmill_run": str(run.id), "recipe": f"{run.recipe}:v{run.version}"},
            )
        except Exception as exc:
            logger.warning("run %d: could not submit job %s: %s", run.id, run.ray_job_id, exc)
            if self.store.update_run(
                run.id,
                expect=[QUEUED],
                status=FAILED,
                finished_at=self.clock(),
                error=f"could not submit the job to Ray at {self.jobs.address}: {exc}",
            ):
                self._ended(run.id)
        else:
            logger.info(
                "run %d: submitted %s:v%d as Ray job %s%s",
                run.id,
                run.recipe,
                run.version,
                run.ray_job_id,
                f", building on {base_dir}" if base_dir else "",
            )
            self.store.update_run(run.id, expect=[QUEUED], status=PENDING, submitted_at=self.clock())
        found = self.store.run(run.id)
        assert found is not None
        return found

    def recover(self) -> None:
        """After a restart: re-attach QUEUED runs whose job reached Ray, submit those whose job never did. A run
        a queue-policy schedule holds back behind its older run is left to the scheduler."""
        for run in self.store.runs(statuses=[QUEUED]):
            if run.schedule_id is not None and any(
                older.id < run.id for older in self.store.active_schedule_runs(run.schedule_id)
            ):
                continue
            if run.submitted_at is None and not self.store.claim_run(run.id, self.clock()):
                continue  # another service process took it
            try:
                self.jobs.info(run.ray_job_id or "")
            except JobNotFound:
                self.submit(run)
            except Exception as exc:
                logger.warning("run %d: cannot reach Ray to recover it (%s); will retry", run.id, exc)
            else:
                self.store.update_run(run.id, expect=[QUEUED], status=PENDING, submitted_at=self.clock())

    def poll_once(self) -> None:
        """Ask Ray about every run in flight and record what changed."""
        for run in self.store.runs(statuses=[QUEUED, PENDING, RUNNING]):
            if run.status == QUEUED:
                continue  # being submitted right now, or left over for recover()
            try:
                state = self.jobs.info(run.ray_job_id or "")
            except JobNotFound:
                self._close(
                    run,
                    FAILED,
                    f"Ray at {self.jobs.address} has no job {run.ray_job_id} any more (the cluster was restarted "
                    "or replaced while the run was in flight); trigger the recipe again",
                    None,
                )
                continue
            except Exception as exc:
                if not self._unreachable_logged:
                    logger.warning("cannot reach Ray at %s (%s); will keep trying", self.jobs.address, exc)
                    self._unreachable_logged = True
                return
            self._unreachable_logged = False
            self._apply(run, state)

    def _apply(self, run: Run, state: JobState) -> None:
        if state.status == "PENDING":
            return
        if state.status == "RUNNING":
            self.store.update_run(
                run.id,
                expect=[PENDING, RUNNING],
                status=RUNNING,
                started_at=run.started_at or self.clock(),
                progress=self._snapshot(run, complete=False),
            )
            return
        if state.status == "SUCCEEDED":
            if run.run_dir and (run_location(run.run_dir) / "manifest.json").is_file():
                self._close(run, SUCCEEDED, None, state)
            else:
                self._close(
                    run,
                    FAILED,
                    f"the job exited successfully but {run.run_dir}/manifest.json is missing, so the run did not "
                    "complete; see the job's logs",
                    state,
                )
        elif state.status == "STOPPED":
            self._close(run, CANCELLED, "the Ray job was stopped", state)
        else:
            error, detail = failure_summary(state, self._logs(run))
            self._close(run, FAILED, error, state, detail)

    def _close(
        self, run: Run, status: str, error: str | None, state: JobState | None, detail: str | None = None
    ) -> None:
        complete = status == SUCCEEDED
        summary = incremental_summary(run.run_dir) if complete and run.run_dir else None
        changed = self.store.update_run(
            run.id,
            expect=[PENDING, RUNNING],
            status=status,
            error=error,
            error_detail=detail,
            started_at=run.started_at or (state.start_time if state else None),
            finished_at=(state.end_time if state else None) or self.clock(),
            progress=self._snapshot(run, complete=complete),
            incremental=summary,
        )
        if changed:
            logger.info("run %d: %s", run.id, status)
            self._ended(run.id)
        if run.run_dir:
            self.progress.forget(run.run_dir)

    def _snapshot(self, run: Run, complete: bool) -> dict | None:
        if not run.run_dir:
            return None
        if run.recipe_id not in self._planned:
            recipe = self.store.recipe(run.recipe, run.version)
            self._planned[run.recipe_id] = planned_steps(recipe.normalized) if recipe else []
        return self.progress.snapshot(run.run_dir, self._planned[run.recipe_id], complete=complete)

    def _logs(self, run: Run) -> str | None:
        try:
            return self.jobs.logs(run.ray_job_id or "")
        except Exception as exc:
            logger.info("run %d: no logs from Ray (%s)", run.id, exc)
            return None

    def logs(self, run: Run) -> str:
        """The job's logs from the Jobs API (JobNotFound if the cluster no longer has them)."""
        if not run.ray_job_id:
            raise JobNotFound(f"run {run.id} has no Ray job")
        return self.jobs.logs(run.ray_job_id)

    def cancel(self, run: Run) -> Run:
        """Stop a run: a queued one at once, a submitted one by stopping its job (the poller records the end)."""
        if run.status in TERMINAL:
            raise RunStateError(f"run {run.id} is already {run.status}; there is nothing to cancel")
        if run.status == QUEUED:
            self.store.update_run(
                run.id,
                expect=[QUEUED],
                status=CANCELLED,
                finished_at=self.clock(),
                error="cancelled before it started",
            )
        try:
            self.jobs.stop(run.ray_job_id or "")
        except JobNotFound:
            if run.status != QUEUED:
                self._close(run, CANCELLED, "cancelled; Ray no longer had its job", None)
        found = self.store.run(run.id)
        assert found is not None
        return found
