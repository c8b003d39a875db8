"""When each step of a run started and ended, per invocation of the runner: `timings.json`.

The part markers say what is done, not how long it took, and their modification times are neither on every
store nor the start of anything. So the driver records, for every step, when it started and ended (UTC wall
clock for people to read, and the monotonic clock's difference as `seconds`, which a clock adjustment during
the run cannot make wrong), how many parts its main phase had, how many of them it computed and how many it
found finished (by an earlier, interrupted invocation, or taken over from a base run), and each phase's share
of the time. Phases of several steps that ran as one engine phase (`chain.py`) divide its wall time between
them, in proportion to the time their tasks took on the workers where the engine returns that (equally
where it does not: Beam's results are read back from the markers), and each such phase names the engine
phase it was part of (`chain`); the steps stay one after the other. The time before the first step
(listing and planning the inputs, starting the engine) is `setup`; the time after the last (stopping the
engine, `documents/`, `stats.json`, `manifest.json`, the report) is `finish`.

Each invocation that works on the run appends a pass and keeps the earlier ones, so the file tells the truth
about a run that was interrupted and resumed: the killed pass keeps the step it was in, started and never
finished, and the next pass shows the parts it found done. A finished run started again does no work and
records nothing.

Timings differ between two runs of the same recipe, which must otherwise be identical byte for byte, so they
live in this file alone: never in `stats.json`, the markers, or the manifest's file list. The file is
rewritten whole and atomically by the driver at each step's start and end; a failure to write it is logged
and the run goes on, because it describes the run and is no part of its result.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from corpusmill.core.atomic import write_json
from corpusmill.core.location import RunPath
from corpusmill.pipelines.graph import Step
from corpusmill.pipelines.parts import not_computed

logger = logging.getLogger(__name__)

TIMINGS_FILE = "timings.json"
TIMINGS_FORMAT = "corpusmill-timings"
TIMINGS_FORMAT_VERSION = 1
# Step and pass states.
RUNNING = "running"
DONE = "done"
REUSED = "reused"  # every part of every phase was found finished: nothing was computed
FAILED = "failed"
INTERRUPTED = "interrupted"  # stopped by the user (Ctrl-C) or the process being asked to exit


@dataclass(frozen=True)
class Moment:
    """A point in time on both clocks: the wall clock to show, the monotonic one to subtract."""

    wall: dt.datetime
    mono: float

    @classmethod
    def now(cls) -> Moment:
        return cls(dt.datetime.now(dt.UTC), time.monotonic())

    @property
    def iso(self) -> str:
        return self.wall.isoformat(timespec="milliseconds")

    def seconds_to(self, end: Moment) -> float:
        return round(max(0.0, end.mono - self.mono), 3)

    def plus(self, seconds: float) -> Moment:
        """The moment `seconds` later on both clocks."""
        return Moment(self.wall + dt.timedelta(seconds=seconds), self.mono + seconds)


@dataclass
class _OpenStep:
    """A step that began and has not ended: its entry in the pass, and when it started."""

    start: Moment
    entry: dict[str, Any]


def _span(start: Moment, end: Moment | None = None) -> dict[str, Any]:
    return {
        "started_at": start.iso,
        "finished_at": end.iso if end else None,
        "seconds": start.seconds_to(end) if end else None,
    }


def _main_phase(step: Step, phases: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The phase whose markers sit in the step's own folder (the parts the run page counts as done): the step
    itself for a map or sink step, its apply phase for a group or plan step."""
    names = {step.dirname, f"{step.dirname} apply"}
    found = [phase for phase in phases if phase["phase"] in names]
    return found[-1] if found else None


class Timings:
    """The recorder of one invocation: its pass, rewritten to the run directory as it goes."""

    def __init__(self, run_dir: RunPath, engine: str, started: Moment) -> None:
        self._path = run_dir / TIMINGS_FILE
        self._passes = _earlier_passes(self._path)
        self._pass: dict[str, Any] = {
            "pass": len(self._passes) + 1,
            "engine": engine,
            "state": RUNNING,
            **_span(started),
            "setup": _span(started),
            "steps": [],
            "finish": None,
        }
        self._passes.append(self._pass)
        self._started = started
        self._setup_open = True
        self._open: dict[str, _OpenStep] = {}
        self._finish: Moment | None = None
        self._write()

    def _close_setup(self, at: Moment) -> None:
        if self._setup_open:
            self._pass["setup"] = _span(self._started, at)
            self._setup_open = False

    def begin(self, step: Step, parts: int) -> None:
        """The step starts now, over `parts` parts."""
        start = Moment.now()
        self._close_setup(start)
        entry: dict[str, Any] = {
            "step": step.dirname,
            "kind": step.kind,
            "stages": [planned.label for planned in step.stages],
            "state": RUNNING,
            **_span(start),
            "parts": parts,
            "parts_run": None,
            "parts_reused": None,
            "parts_borrowed": None,
            "phases": [],
        }
        self._pass["steps"].append(entry)
        self._open[step.dirname] = _OpenStep(start, entry)
        self._write()

    def phase(
        self,
        step: Step,
        description: str,
        results: list[dict[str, Any]],
        start: Moment,
        end: Moment,
        chain: str | None = None,
    ) -> None:
        """A phase of `step` ran from `start` to `end`: its parts, how many were found finished, how long it
        took. `chain` names the engine phase it shared with other steps' phases (`chain.py`), whose wall time
        the runner divided between them; a step whose first phase is such a slice starts where it begins."""
        record = self._open.get(step.dirname)
        if record is None:
            return
        if not record.entry["phases"] and start.mono > record.start.mono:
            record.start = start
            record.entry.update(_span(start))
        record.entry["phases"].append(
            {
                "phase": description,
                "parts": len(results),
                "parts_reused": sum(1 for result in results if not_computed(result)),
                "parts_borrowed": sum(1 for result in results if result.get("borrowed")),
                "seconds": start.seconds_to(end),
                **({"chain": chain} if chain else {}),
            }
        )

    def end(self, step: Step, at: Moment | None = None) -> None:
        """The step is done, now or `at` (the end of its last phase, when that ran after its own work)."""
        record = self._open.pop(step.dirname)
        end = at or Moment.now()
        entry = record.entry
        entry.update(_span(record.start, end))
        main = _main_phase(step, entry["phases"])
        if main is not None:
            entry["parts"] = main["parts"]
            entry["parts_reused"] = main["parts_reused"]
            entry["parts_borrowed"] = main["parts_borrowed"]
            entry["parts_run"] = main["parts"] - main["parts_reused"]
        every_part_found = bool(entry["phases"]) and all(
            phase["parts"] and phase["parts_reused"] == phase["parts"] for phase in entry["phases"]
        )
        entry["state"] = REUSED if every_part_found else DONE
        self._write()

    def finishing(self) -> None:
        """The steps are over; what follows (documents, stats, manifest, report) is the `finish` entry."""
        self._finish = Moment.now()
        self._close_setup(self._finish)
        self._pass["finish"] = _span(self._finish)
        self._write()

    def done(self) -> None:
        """The run is complete: close `finish` and the pass."""
        end = Moment.now()
        if self._finish is not None:
            self._pass["finish"] = _span(self._finish, end)
        self._pass.update(_span(self._started, end), state=DONE)
        self._write()

    def failed(self, exc: BaseException) -> None:
        """The pass stopped on `exc`, which the caller re-raises; a resume will append the next pass."""
        end = Moment.now()
        self._close_setup(end)
        for record in self._open.values():  # the steps it was in
            record.entry.update(_span(record.start, end), state=_ended(exc))
        self._open.clear()
        if self._finish is not None:
            self._pass["finish"] = _span(self._finish, end)
        self._pass.update(_span(self._started, end), state=_ended(exc), error=_describe(exc))
        self._write()

    def _write(self) -> None:
        data = {"format": TIMINGS_FORMAT, "format_version": TIMINGS_FORMAT_VERSION, "passes": self._passes}
        try:
            write_json(self._path, data)
        except Exception:  # the timings describe the run; they must not end it
            logger.warning("could not write %s; the run goes on without it", self._path, exc_info=True)


def _ended(exc: BaseException) -> str:
    return FAILED if isinstance(exc, Exception) else INTERRUPTED


def _describe(exc: BaseException) -> str:
    message = str(exc).splitlines()[0] if str(exc) else ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:300]


def _earlier_passes(path: RunPath) -> list[dict[str, Any]]:
    """The passes of the invocations before this one (none for a new run, or an unreadable file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        logger.warning("%s cannot be read (%s); its earlier passes are not kept", path, exc)
        return []
    passes = data.get("passes") if isinstance(data, dict) else None
    if not isinstance(passes, list):
        logger.warning("%s is not a timings file; its content is not kept", path)
        return []
    return passes
