"""Request and response bodies of the API (and so of its OpenAPI schema at /openapi.json)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from corpusmill.service.runs import MAX_LISTED_FILES
from corpusmill.service.store import RecipeVersion, Run, Schedule


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecipeIn(_In):
    """A recipe to register, as the YAML text a recipe file holds."""

    yaml: str = Field(description="The recipe YAML; input paths must be absolute or URIs.")


class RecipeOut(BaseModel):
    """One registered version of a recipe."""

    name: str
    version: int
    fingerprint: str = Field(description="Recipe.fingerprint(): what keys a run's output.")
    created_at: dt.datetime
    created: bool | None = Field(
        default=None, description="On registration: whether this made a new version."
    )
    yaml: str | None = Field(default=None, description="The body as posted (single-version reads only).")
    normalized: str | None = Field(default=None, description="The normalised recipe that jobs run.")

    @classmethod
    def of(cls, recipe: RecipeVersion, full: bool = False, created: bool | None = None) -> RecipeOut:
        """From a stored version."""
        return cls(
            name=recipe.name,
            version=recipe.version,
            fingerprint=recipe.fingerprint,
            created_at=recipe.created_at,
            created=created,
            yaml=recipe.yaml if full else None,
            normalized=recipe.normalized if full else None,
        )


class RecipeSummary(BaseModel):
    """A recipe name with its newest version, and where to read it."""

    name: str
    latest_version: int
    updated_at: dt.datetime
    fingerprint: str = Field(description="The newest version's fingerprint.")
    url: str = Field(description="The recipe with its YAML and versions (GET).")


class RecipeDetail(BaseModel):
    """A recipe: its newest version in full (YAML included) and every version, oldest first."""

    name: str
    latest: RecipeOut
    versions: list[RecipeOut]


class TriggerIn(_In):
    """Which version to rebuild (default: the newest)."""

    version: int | None = Field(default=None, ge=1)


class IncrementalOut(BaseModel):
    """What a finished run built on its base: its stats.json "incremental" section, file lists capped (the
    run's stats.json artifact lists every name)."""

    base: str | None = Field(description="The base run's directory.")
    added_count: int = Field(description="Input files the base did not have, read by this run.")
    added_files: list[str] = Field(description=f"Their names (the first {MAX_LISTED_FILES}).")
    removed_count: int = Field(description="Input files of the base that are gone.")
    removed_files: list[str] = Field(description=f"Their names (the first {MAX_LISTED_FILES}).")
    parts: int | None = Field(description="Parts planned over all input files.")
    reused_parts: int | None = Field(description="Parts taken over from the base unchanged.")
    taken_down: int | None = Field(description="Documents removed by takedown in the whole run.")


class RunOut(BaseModel):
    """A run: its job, its times, its progress, what it was built on."""

    id: int
    recipe: str
    version: int
    status: str = Field(description="QUEUED, PENDING, RUNNING, SUCCEEDED, FAILED or CANCELLED.")
    run_dir: str | None
    ray_job_id: str | None
    trigger: str = Field(description="manual or schedule.")
    schedule_id: int | None
    scheduled_for: dt.datetime | None
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None = Field(description="Why the run failed or was cancelled: its one-line cause first.")
    error_detail: str | None = Field(
        default=None, description="A failed job's traceback (or log tail), colour codes stripped."
    )
    progress: dict[str, Any] | None = Field(
        description="Per step: state, parts done, documents in/out per stage (from the stage markers)."
    )
    base_run_id: int | None = Field(
        description="The run this one builds on (runs of incremental schedules); None for a full build."
    )
    base_note: str | None = Field(description="Why a run of an incremental schedule is a full build.")
    incremental: IncrementalOut | None = Field(
        description="Once an incremental run succeeded: its new input files and reused parts."
    )

    @classmethod
    def of(cls, run: Run) -> RunOut:
        """From a stored run."""
        data = asdict(run)
        data.pop("recipe_id")
        return cls(**data)


Overlap = Literal["skip", "queue", "cancel"]
CatchUp = Literal["one", "none"]
_OVERLAP = (
    "When a tick finds the schedule's last run still queued or running: skip (fire nothing), queue (start the "
    "new run when the old one ends; at most one waits) or cancel (cancel the old run, start the new one)."
)
_CATCH_UP = (
    "Ticks missed while the service was down: one (fire one run for them all) or none (wait for the next)."
)
_CRON = (
    "Five-field cron expression or a macro (@hourly, @daily, @weekly, @monthly, @yearly), e.g. '0 3 * * *'."
)
_TIMEZONE = "IANA time zone the cron fields are read in, e.g. 'Europe/Berlin'; ticks are returned in UTC."
_WEBHOOK = (
    "http(s) URL POSTed a small JSON when a run of the schedule fails or succeeds with report warnings."
)


class ScheduleIn(_In):
    """A cron schedule that rebuilds a recipe."""

    recipe: str
    version: int | None = Field(
        default=None, ge=1, description="Pin a version; default: the newest at each tick."
    )
    cron: str = Field(description=_CRON)
    paused: bool = False
    incremental: bool = Field(
        default=False,
        description="Build each run on the schedule's newest successful run, reading only new input files.",
    )
    overlap: Overlap = Field(default="skip", description=_OVERLAP)
    catch_up: CatchUp = Field(default="one", description=_CATCH_UP)
    timezone: str = Field(default="UTC", description=_TIMEZONE)
    webhook_url: str | None = Field(default=None, description=_WEBHOOK)


class SchedulePatch(_In):
    """Change a schedule's fields; those left out stay as they are."""

    cron: str | None = Field(default=None, description=_CRON)
    paused: bool | None = None
    incremental: bool | None = None
    overlap: Overlap | None = Field(default=None, description=_OVERLAP)
    catch_up: CatchUp | None = Field(default=None, description=_CATCH_UP)
    timezone: str | None = Field(default=None, description=_TIMEZONE)
    webhook_url: str | None = Field(default=None, description=_WEBHOOK + ' "" removes it.')


class ScheduleOut(BaseModel):
    """A schedule with its next tick and its rules."""

    id: int
    recipe: str
    version: int | None
    cron: str
    timezone: str = Field(description=_TIMEZONE)
    paused: bool
    next_run_at: dt.datetime | None = Field(description="The next tick (UTC); null while paused.")
    last_fired_at: dt.datetime | None
    created_at: dt.datetime
    incremental: bool
    overlap: Overlap = Field(description=_OVERLAP)
    catch_up: CatchUp = Field(description=_CATCH_UP)
    webhook_url: str | None = Field(description=_WEBHOOK)
    skipped_ticks: int = Field(
        description="Ticks that fired no run (overlap skip, or missed under catch_up none)."
    )
    deleted_at: dt.datetime | None = Field(
        description="When it was deleted (listed with ?deleted=true only); its runs keep its id."
    )

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleOut:
        """From a stored schedule; a paused one has no next tick to show."""
        data = asdict(schedule)
        if schedule.paused or schedule.deleted_at is not None:
            data["next_run_at"] = None
        return cls(**data)


class Artifact(BaseModel):
    """One output file of a run, as its manifest.json lists it."""

    path: str
    bytes: int
    sha256: str


class DomainDelta(BaseModel):
    """One domain's tokens and share in each run."""

    domain: str
    tokens_before: int
    tokens_after: int
    delta_tokens: int
    share_before: float
    share_after: float
    delta_share: float


class MixtureDelta(BaseModel):
    """One pair of mix stages compared."""

    stage_before: str | None
    stage_after: str | None
    tokens_before: int
    tokens_after: int
    delta_tokens: int
    domains: list[DomainDelta]


class MixtureDiff(BaseModel):
    """How the mixture of run `after` differs from that of run `before`."""

    before: int
    after: int
    mixtures: list[MixtureDelta]
