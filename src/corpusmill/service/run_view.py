"""What the run page says about how a run went, gathered from the run's row and its files.

The row gives times and status; `stats.json` (written when the run completes) gives documents, tokens and
drops by reason; `report/mixture.json` gives the report's warnings, which turn a plain SUCCEEDED into
"succeeded with warnings"; `parts.json` gives how many input parts each step works through; `timings.json`
(the runner's record of each step's start and end, one pass per invocation) gives each step's duration,
summed over the passes that worked on it, and its start and end; a step in flight shows its time so far. A
run directory older than `timings.json` falls back to the step markers' modification times: each step from
the previous one's last part to its own (local run directories only: on object storage that would be a
request per marker). A failed or cancelled run names the step it stopped in, instead of leaving every step
"waiting". Every file is optional: a run in flight has few of them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpusmill.pipelines.summary import NOT_DOCUMENT_PREFIX, RunSummary, not_documents, summarize
from corpusmill.pipelines.timings import TIMINGS_FILE
from corpusmill.service.artifacts import ArtifactMissing, read_mixture, run_location
from corpusmill.service.mixdiff import NoMixture, mixture_diff
from corpusmill.service.page_render import utc_text
from corpusmill.service.runs import RECIPE_FILE
from corpusmill.service.store import ACTIVE, CANCELLED, FAILED, SUCCEEDED, Run, Store

FILE_LINKS = ("manifest.json", "stats.json", TIMINGS_FILE, RECIPE_FILE)


@dataclass
class Drop:
    """Documents a stage dropped (or, for reading, records it skipped) for one reason."""

    stage: str
    reason: str
    count: int
    skipped: bool  # a read skip: the record never became a document


@dataclass
class RunView:
    """Everything the run page shows beyond the row itself."""

    status_label: str
    status_class: str
    duration_s: float | None
    documents_read: int | None = None
    documents_kept: int | None = None
    tokens_written: int | None = None
    drops: list[Drop] = field(default_factory=list)
    not_documents: dict[str, int] = field(default_factory=dict)  # records of other types, by type
    warnings: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    parts_total: int | None = None
    stopped_in: str | None = None
    files: list[str] = field(default_factory=list)
    previous: Run | None = None
    comparison: list[dict[str, Any]] | None = None
    comparison_note: str | None = None


def _json(run_dir: str, relative: str) -> Any:
    """A JSON file of the run directory, or None when it is missing or unreadable."""
    try:
        return json.loads((run_location(run_dir) / relative).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _exists(run_dir: str, relative: str) -> bool:
    with contextlib.suppress(OSError):
        return (run_location(run_dir) / relative).is_file()
    return False


def duration_s(run: Run, now: dt.datetime) -> float | None:
    """From start (or submission) to the end, or to now while the run is in flight."""
    start = run.started_at or run.submitted_at
    if start is None:
        return None
    return ((run.finished_at or now) - start).total_seconds()


def _step_end(run_dir: str, step: str) -> dt.datetime | None:
    """When the step's newest part marker was written (local run directories only)."""
    location = run_location(run_dir)
    if not isinstance(location, Path):
        return None
    times = [p.stat().st_mtime for p in (location / "stages" / step).glob("*.done.json")]
    return dt.datetime.fromtimestamp(max(times), dt.UTC) if times else None


def _marker_times(run: Run, steps: list[dict[str, Any]]) -> None:
    """The fallback for a run without `timings.json`: each step's `seconds` from the previous step's end (or
    the run's start) to its own last part, as its markers' modification times tell."""
    previous_end = run.started_at
    for step in steps:
        end = _step_end(run.run_dir, step["step"]) if run.run_dir and step["parts_done"] else None
        step["seconds"] = (end - previous_end).total_seconds() if end and previous_end else None
        previous_end = end or previous_end
        step["took"] = "from the previous step's end to this step's last part, by its part markers' times"


def _at(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _recorded(run: Run, timings: dict[str, Any], now: dt.datetime) -> dict[str, dict[str, Any]]:
    """Per step: its seconds over every pass, first start and last end, whether it is in flight, and a note.

    A step a pass left unfinished (the process was killed) counts up to now while the run is in flight, up to
    the run's end when that is the latest pass, and not at all when a later pass followed (when it died is
    unknown); the note says so.
    """
    passes = [p for p in timings.get("passes") or [] if isinstance(p, dict)]
    found: dict[str, dict[str, Any]] = {}
    for number, one in enumerate(passes, start=1):
        latest = number == len(passes)
        for entry in one.get("steps") or []:
            start, end = _at(entry.get("started_at")), _at(entry.get("finished_at"))
            if start is None:
                continue
            step = found.setdefault(
                entry.get("step"), {"seconds": 0.0, "started_at": start, "passes": 0, "notes": []}
            )
            step.update(passes=step["passes"] + 1, finished_at=end, running=False, entry=entry)
            seconds = entry.get("seconds")
            if end is not None:
                step["seconds"] += (
                    seconds if isinstance(seconds, int | float) else (end - start).total_seconds()
                )
            elif latest and run.status in ACTIVE:
                step.update(seconds=step["seconds"] + max(0.0, (now - start).total_seconds()), running=True)
            elif latest and run.finished_at is not None and run.finished_at >= start:
                step["seconds"] += (run.finished_at - start).total_seconds()
                step["notes"].append("never recorded its end: counted to the run's end")
            else:
                step["notes"].append(f"pass {number} stopped in it without recording when: not counted")
    return found


def _timing_note(step: dict[str, Any]) -> str:
    """The title of a step's duration: its start and end, passes, and parts found finished."""
    said = [f"started {utc_text(step['started_at'])}"]
    if step["finished_at"] is not None:
        said.append(f"finished {utc_text(step['finished_at'])}")
    elif step["running"]:
        said.append("running")
    if step["entry"].get("state") in ("failed", "interrupted"):
        said.append(step["entry"]["state"])
    if step["passes"] > 1:
        said.append(f"over {step['passes']} passes (the run was resumed)")
    entry = step["entry"]
    parts, reused = entry.get("parts"), entry.get("parts_reused")
    if reused and parts:
        said.append(f"{reused} of {parts} parts found finished")
    return "; ".join([*said, *step["notes"]])


def _timed(run: Run, steps: list[dict[str, Any]], timings: dict[str, Any], now: dt.datetime) -> None:
    """Each step's `seconds`, `started_at`, `finished_at` and `running` from `timings.json`."""
    recorded = _recorded(run, timings, now)
    for step in steps:
        found = recorded.get(step["step"])
        if found is None:
            step.update(seconds=None, started_at=None, finished_at=None, running=False, took=None)
            continue
        step.update(
            seconds=found["seconds"],
            started_at=found["started_at"],
            finished_at=found["finished_at"],
            running=found["running"],
            took=_timing_note(found),
        )


def steps_of(
    run: Run,
    parts_total: int | None,
    timings: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The progress steps as the page shows them, and the step a failed or cancelled run stopped in.

    A step's `seconds` come from `timings` (the run's `timings.json`) when there is one, else from the
    markers' modification times; `took` says which, for the page's title.
    """
    steps = [dict(s) for s in (run.progress or {}).get("steps", [])]
    if isinstance(timings, dict):
        _timed(run, steps, timings, now or dt.datetime.now(dt.UTC))
    else:
        _marker_times(run, steps)
    for step in steps:
        step["parts_total"] = parts_total
    stopped_in = None
    if run.status in (FAILED, CANCELLED):
        ended = "failed" if run.status == FAILED else "cancelled"
        for step in steps:
            if stopped_in is None and step["state"] != "done":
                stopped_in, step["state"] = step["step"], ended
            elif stopped_in is not None:
                step["state"] = "not reached"
    return steps, stopped_in


def _drops(summary: RunSummary) -> list[Drop]:
    # Records of other types than the reader takes (a WARC file's requests, metadata, warcinfo) were never
    # meant to be documents: they are counted apart (`_not_documents`), not as losses.
    drops = []
    for stage in summary.stages:
        reasons = stage.skipped if stage.reads_input else stage.dropped
        for reason, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            if count and not (stage.reads_input and reason.startswith(NOT_DOCUMENT_PREFIX)):
                drops.append(Drop(stage.label, reason, count, stage.reads_input))
    return drops


def _not_documents(summary: RunSummary) -> dict[str, int]:
    found: dict[str, int] = {}
    for stage in summary.stages:
        if stage.reads_input:
            for kind, count in not_documents(stage.skipped).items():
                found[kind] = found.get(kind, 0) + count
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


def previous_run(store: Store, run: Run) -> Run | None:
    """The newest successful run before this one of the same schedule (of the same recipe for a manual run)."""
    if run.schedule_id is not None:
        found = store.runs(statuses=[SUCCEEDED], schedule_id=run.schedule_id, before_id=run.id, limit=1)
        return found[0] if found else None
    for other in store.runs(statuses=[SUCCEEDED], recipe=run.recipe, before_id=run.id, limit=200):
        if other.schedule_id is None:
            return other
    return None


def _compare(
    before: Run, after: Run, after_mixture: Any = None
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The mixture difference from `before` to `after`; `after_mixture` is `after`'s report data when the
    caller has read it already (the run page has), so it is not read twice."""
    try:
        if after_mixture is None:
            after_mixture = read_mixture(after.run_dir or "")
        return mixture_diff(read_mixture(before.run_dir or ""), after_mixture), None
    except ArtifactMissing:
        return None, f"run #{before.id} has no mixture report to compare with"
    except NoMixture as exc:
        return None, str(exc)


def run_view(store: Store, run: Run, now: dt.datetime) -> RunView:
    """The run page's summary of `run`."""
    mixture = _json(run.run_dir, "report/mixture.json") if run.run_dir else None
    warnings = list((mixture or {}).get("warnings") or [])
    warned = run.status == SUCCEEDED and bool(warnings)
    view = RunView(
        status_label="SUCCEEDED WITH WARNINGS" if warned else run.status,
        status_class="WARNED" if warned else run.status,
        duration_s=duration_s(run, now),
        warnings=warnings,
    )
    if not run.run_dir:
        view.steps, view.stopped_in = steps_of(run, None, now=now)
        return view
    parts = _json(run.run_dir, "parts.json")
    view.parts_total = len(parts) if isinstance(parts, list) else None
    timings = _json(run.run_dir, TIMINGS_FILE)
    view.steps, view.stopped_in = steps_of(run, view.parts_total, timings, now)
    stats = _json(run.run_dir, "stats.json")
    summary = None
    if isinstance(stats, dict):
        with contextlib.suppress(KeyError, TypeError, ValueError):  # a stats.json of another shape
            summary = summarize(stats)
    if summary is not None:
        read = summary.read
        view.documents_read = read.docs_out if read is not None else None
        view.documents_kept = summary.documents_out
        view.tokens_written = summary.tokens_written
        view.drops = _drops(summary)
        view.not_documents = _not_documents(summary)
    read = {name for name, data in (("stats.json", stats), (TIMINGS_FILE, timings)) if data is not None}
    view.files = [name for name in FILE_LINKS if name in read or _exists(run.run_dir, name)]
    if run.status == SUCCEEDED:
        view.previous = previous_run(store, run)
        if view.previous is not None:
            view.comparison, view.comparison_note = _compare(view.previous, run, mixture)
    return view
