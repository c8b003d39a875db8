"""Runs a recipe: plans steps, hands part tasks to an engine, and lays out the run directory.

The run directory is keyed by the recipe's fingerprint. Every step writes under `stages/`, rejected documents
go to `rejected/`, input records that never became documents to `skipped/` (written by the first step, which
reads the input), the final documents are linked into `documents/`, sinks write their own folder
(`shards/`), and `manifest.json` is written last: its presence means the run is complete (the derived
`report/` pages follow it and are rebuilt when missing), so running a finished recipe again does nothing but
remove the temporaries a killed write left in it and rebuild a missing report, and running an interrupted one
resumes at the first unfinished part (removing its temporaries first).

`run.json` records the input root and every input file's name, size and content version. Running again,
finished or not, first checks the inputs against it: a file that grew, shrank, was replaced, added or removed
is refused with its name and the two ways forward (`--restart`, or another `--output`), never resumed into a
mix of the old corpus and the new. It records the takedown list's digest too (`removed.txt` holds the list),
and a resume under another list is refused the same way.

A run built on a base run (`base`, `--base`) plans its parts as a full run would and takes over from the base
every part of unchanged input at every step where its input is the same (`borrow.py`), so it costs what its
new data costs and writes what a full run writes. `parts.json` records the planned parts a later run matches.

Per-part phases of consecutive steps that need no result in between run as one engine phase (`chain.py`):
the map step with the next dedup step's keys, a dedup step's drop with the steps after it up to a sink's
write. Each step's task still writes its own files and markers, so nothing about the run's output changes.

`timings.json` records when each step started and ended, one pass per invocation that worked on the run
(`timings.py`). Timings differ between runs whose results must be identical, so they are kept out of
`stats.json`, the markers and the manifest's file list.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from corpusmill import __version__
from corpusmill.core.atomic import (
    TEMP_SUFFIX,
    atomic_open,
    is_temporary,
    remove_temporaries,
    target_of,
    write_json,
)
from corpusmill.core.location import copy_file, ensure_dir, open_parquet, remove_tree, run_path
from corpusmill.core.recipe import Recipe
from corpusmill.core.stage import GroupStage, PlanStage, SinkContext, SinkStage
from corpusmill.core.stats import Stats, merge_labelled
from corpusmill.io.inputs import InputFile
from corpusmill.pipelines.borrow import PARTS_FILE, Borrower, write_parts
from corpusmill.pipelines.chain import PhaseChain, Queued, shares
from corpusmill.pipelines.engine import NODE, Engine, make_engine
from corpusmill.pipelines.graph import PlannedStage, Step, plan_steps
from corpusmill.pipelines.group_step import group_layout, resolve_duplicates
from corpusmill.pipelines.group_tasks import ApplyDuplicatesTask, KeysTask
from corpusmill.pipelines.increment import (
    check_base,
    describe_increment,
    incremental_run_dir,
    plan_borrowing,
)
from corpusmill.pipelines.part_source import DOCUMENTS
from corpusmill.pipelines.partitioning import plan_input_parts
from corpusmill.pipelines.parts import (
    INTERMEDIATE,
    AccountTask,
    ApplyPlanTask,
    GatherTask,
    MapTask,
    PartSource,
    PartSpec,
    SinkTask,
    not_computed,
)
from corpusmill.pipelines.summary import RunSummary, summarize
from corpusmill.pipelines.takedown import REMOVED_FILE, Takedown, read_takedown, run_takedown
from corpusmill.pipelines.timings import TIMINGS_FILE, Moment, Timings
from corpusmill.shards.manifest import sha256_file

logger = logging.getLogger(__name__)

RUN_FORMAT = "corpusmill-run"
RUN_FORMAT_VERSION = 1
SKIPPED = "skipped"
# Keys of `nodes` in stats.json besides node ids: parts not computed in this run, and parts run where the
# engine cannot tell.
REUSED = "reused"
UNKNOWN_NODE = "unknown"


class RunDirError(RuntimeError):
    """The run directory belongs to something else (another recipe, other inputs)."""


# What a run directory holds that `--restart` clears; anything else in it (annotations, training) stays.
_RUN_OUTPUTS = (
    "stages",
    "rejected",
    SKIPPED,
    "documents",
    "shards",
    "report",
    "stats.json",
    "manifest.json",
    "run.json",
    "index",
    PARTS_FILE,
    REMOVED_FILE,
    TIMINGS_FILE,
)
INDEX = "index"
# Whether consecutive per-part phases of different steps run as one engine phase (`chain.py`). Off, each runs
# alone as soon as it is queued: the same files, but a phase (and an engine's fixed cost per phase) each.
CHAIN_PHASES = True


class Progress(Protocol):
    """What the runner reports while it works (the CLI draws bars from it)."""

    def phase(self, description: str, total: int) -> None:
        """A new phase over `total` parts begins."""

    def advance(self) -> None:
        """One part of the current phase finished."""


class _Silent:
    def phase(self, description: str, total: int) -> None:
        pass

    def advance(self) -> None:
        pass


@dataclass
class RunResult:
    """Where a run lives and what it did."""

    run_dir: Path
    already_complete: bool
    summary: RunSummary


@dataclass
class _RunState:
    recipe: Recipe
    run_dir: Path
    engine: Engine
    progress: Progress
    strict: bool = False
    borrower: Borrower | None = None
    takedown: Takedown = field(default_factory=Takedown)
    stats: dict[str, Stats] = field(default_factory=dict)
    sink_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # part tasks per node (`_count_node`)
    timings: Timings | None = None
    chain: PhaseChain = field(default_factory=lambda: PhaseChain([]))  # per-part phases not yet run
    ending: list[Step] = field(default_factory=list)  # steps whose last phase is queued in `chain`

    def collect(self, phase: str, results: list[dict[str, Any]]) -> None:
        for result in results:
            merge_labelled(self.stats, result["stats"])
            self._count_node(phase, result)

    def _count_node(self, phase: str, result: dict[str, Any]) -> None:
        """Count the part under the node that did its work (`nodes` in `stats.json`).

        A part that an earlier run finished (found by a resumed run) or that was taken over from the base run
        was not computed here: it counts under `reused`, wherever its task found it. A result that names no
        node (an engine that cannot know where its workers are) counts under `unknown`.
        """
        node = REUSED if not_computed(result) else str(result.get(NODE) or UNKNOWN_NODE)
        entry = self.nodes.setdefault(node, {"parts": 0, "phases": {}})
        entry["parts"] += 1
        entry["phases"][phase] = entry["phases"].get(phase, 0) + 1


def default_run_dir(recipe: Recipe, root: Path = Path("runs")) -> Path:
    """`runs/<name>-<fingerprint>`."""
    return root / f"{recipe.name}-{recipe.fingerprint()}"


def run_recipe(
    recipe: Recipe,
    *,
    engine: str = "ray",
    address: str | None = None,
    output: str | Path | None = None,
    num_cpus: int | None = None,
    engine_args: Sequence[str] = (),
    progress: Progress | None = None,
    restart: bool = False,
    strict: bool = False,
    base: str | Path | None = None,
    removals: Path | None = None,
) -> RunResult:
    """Run (or resume, or recognise as finished) a recipe and return its run directory and summary.

    `restart` clears what an earlier run left in the directory (for example after its inputs changed) and
    starts from scratch. An input file that cannot be read is skipped and listed in `skipped/`; `strict`
    stops the run on it instead (`InputFileError`, naming the file). `base` is a finished run of the same
    recipe to build on (see `borrow.py`); `removals` a takedown list (see `takedown.py`), added to the base's.
    """
    from corpusmill.io import detect_format
    from corpusmill.io.inputs import list_inputs, root_uri

    begun = Moment.now()
    takedown = read_takedown(removals) if removals is not None else Takedown()
    base_takedown = Takedown()
    if base is not None:
        check_base(run_path(base), recipe)
        base_takedown = run_takedown(run_path(base))
        takedown = base_takedown.union(takedown)
    root = root_uri(recipe.input.paths, recipe.input.root)  # found once: it may take object store requests
    inputs = list_inputs(recipe.input.paths, root)
    if output is not None:
        run_dir = run_path(output)
    elif base is not None:
        run_dir = incremental_run_dir(recipe, inputs, takedown)
    else:
        run_dir = default_run_dir(recipe)
    if base is not None and _same_directory(run_dir, run_path(base)):
        raise RunDirError(f"{run_dir} is the base run itself; give the incremental run another --output")
    if restart:
        _clear_run_dir(run_dir)
    if _is_complete(run_dir, recipe):
        previous = _read_run_json(run_dir)
        _check_inputs(run_dir, previous, inputs)
        _check_takedown(run_dir, previous, takedown)
        _remove_stale_temporaries(run_dir)
        _ensure_report(run_dir)
        return RunResult(run_dir, True, summarize(json.loads((run_dir / "stats.json").read_text())))
    _claim_run_dir(run_dir, recipe, root, inputs, takedown, base)
    fmt = recipe.input.format
    parts = plan_input_parts(
        ((file, fmt if fmt != "auto" else detect_format(file.uri)) for file in inputs),
        recipe.input.part_bytes,
    )
    write_parts(run_dir, parts)
    part_count = len(parts)
    borrower = (
        plan_borrowing(run_path(base), run_dir, parts, takedown.minus(base_takedown))
        if base is not None
        else None
    )
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if engine == "beam":
        engine_args = [*recipe.beam.options, *engine_args]
    steps = plan_steps(recipe)
    if takedown and steps[0].kind != "map":
        steps.insert(0, Step(0, "map", ()))  # a step that can drop the removed documents before the first
    timings = Timings(run_dir, engine, begun)
    try:
        with make_engine(engine, address=address, num_cpus=num_cpus, engine_args=engine_args) as backend:
            state = _RunState(recipe, run_dir, backend, progress or _Silent(), strict, borrower, takedown)
            state.timings = timings
            state.chain = PhaseChain(parts)
            for position, step in enumerate(steps):
                timings.begin(step, len(state.chain.parts))
                _run_step(state, step, first=position == 0)
                if state.chain.holds(step):
                    state.ending.append(step)  # it ends with its last phase, which runs with a later step's
                else:
                    timings.end(step)
            _run_queued(state)
            parts = state.chain.parts
        timings.finishing()
        _link_documents(run_dir, parts)
        incremental = describe_increment(borrower, inputs, part_count, state.stats) if borrower else None
        stats = _write_stats(state, engine, incremental)
        _write_manifest(state, engine, started, stats)
        _ensure_report(run_dir)
    except BaseException as exc:
        timings.failed(exc)
        raise
    timings.done()
    return RunResult(run_dir, False, summarize(stats))


def _ensure_report(run_dir: Path) -> None:
    """Write `report/` for a finished run that lacks one; a failure is logged, the run itself stands."""
    if (run_dir / "report" / "index.html").exists():
        return
    from corpusmill.mixtures.report import build_report

    try:
        build_report(run_dir)
    except Exception:  # the report is derived from stats.json and can always be rebuilt
        logger.exception(
            "could not write the report of %s; rebuild it with `corpusmill report %s`", run_dir, run_dir
        )


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Delete what killed writes of a finished run left in its own outputs (a report write killed after the
    manifest), which `verify` would report; a finished run is never claimed again, so its resume never does.

    Only the run's own files and folders are cleaned: other commands (`annotate`, `train`) write into a
    finished run directory, and one of them may be writing there now.
    """
    owned = {*_RUN_OUTPUTS, "recipe.yaml"}
    removed = [
        path
        for path in run_dir.glob(f".*{TEMP_SUFFIX}")
        if path.is_file() and is_temporary(path) and target_of(path).name in owned
    ]
    for path in removed:
        path.unlink(missing_ok=True)
    for name in sorted(owned):
        if (run_dir / name).is_dir():
            removed += remove_temporaries(run_dir / name)
    if removed:
        logger.info("removed %d temporary files left by interrupted writes in %s", len(removed), run_dir)


def _is_complete(run_dir: Path, recipe: Recipe) -> bool:
    manifest = run_dir / "manifest.json"
    if not manifest.exists():
        return False
    data = json.loads(manifest.read_text(encoding="utf-8"))
    if data.get("fingerprint") != recipe.fingerprint():
        raise RunDirError(
            f"{run_dir} holds a finished run of another recipe (fingerprint {data.get('fingerprint')}, this recipe "
            f"is {recipe.fingerprint()}); choose another --output or remove that directory"
        )
    return True


def _clear_run_dir(run_dir: Path) -> None:
    """Remove an earlier run's outputs from `run_dir`, so the run starts from scratch."""
    for name in _RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir():
            remove_tree(path)
        elif path.exists():
            path.unlink()
    if run_dir.exists():
        logger.info("restarting the run in %s from scratch", run_dir)


def _read_run_json(run_dir: Path) -> dict[str, Any]:
    marker = run_dir / "run.json"
    return json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}


def _input_records(inputs: Sequence[InputFile]) -> list[list[Any]]:
    return [file.identity() for file in inputs]


def _check_inputs(run_dir: Path, previous: dict[str, Any], inputs: Sequence[InputFile]) -> None:
    """Refuse to continue a run whose input files differ from the ones it started with, naming them."""
    recorded = previous.get("files")
    if recorded is None:
        raise RunDirError(
            f"{run_dir} was started by an earlier corpusmill that did not record its input files, so a resume "
            "cannot be checked against them; rerun with --restart to start over, or choose another --output"
        )
    then = {name: (size, version) for name, size, version in recorded}
    now = {file.name: (file.size, file.version) for file in inputs}
    changes = [f"{name}: removed" for name in sorted(then.keys() - now.keys())]
    changes += [f"{name}: added" for name in sorted(now.keys() - then.keys())]
    for name in sorted(then.keys() & now.keys()):
        (old_size, old_version), (new_size, new_version) = then[name], now[name]
        if old_size != new_size:
            verb = "grew" if new_size > old_size else "shrank"
            changes.append(f"{name}: {verb} from {old_size} to {new_size} bytes")
        elif old_version != new_version:
            changes.append(f"{name}: changed ({old_version} then, {new_version} now)")
    if changes:
        shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
        raise RunDirError(
            f"{run_dir}: the input files changed since this run started ({shown}). Its results belong to the "
            "inputs as they were; rerun with --restart to start over on the inputs as they are now, or choose "
            "another --output"
        )


def _check_takedown(run_dir: Path, previous: dict[str, Any], takedown: Takedown) -> None:
    """Refuse to continue a run under another takedown list than the one it started with."""
    if previous.get("removed") != takedown.record():
        then = (previous.get("removed") or {}).get("entries", 0)
        raise RunDirError(
            f"{run_dir} was started with a takedown list of {then} entries, and this run's list has "
            f"{len(takedown.entries)} (or other ones); its results belong to the list it started with: rerun "
            "with --restart to start over with this list, or choose another --output"
        )


def _same_directory(one: Path, other: Path) -> bool:
    if isinstance(one, Path) and isinstance(other, Path):
        return one.resolve() == other.resolve()
    return str(one).rstrip("/") == str(other).rstrip("/")


def _claim_run_dir(
    run_dir: Path,
    recipe: Recipe,
    root: str,
    inputs: Sequence[InputFile],
    takedown: Takedown,
    base: Path | None,
) -> None:
    identity = {
        "fingerprint": recipe.fingerprint(),
        "root": root,
        "files": _input_records(inputs),
        "removed": takedown.record(),
        "base": str(base) if base is not None else None,
    }
    marker = run_dir / "run.json"
    if marker.exists():
        previous = _read_run_json(run_dir)
        if previous.get("fingerprint") != identity["fingerprint"]:
            raise RunDirError(
                f"{run_dir} holds an unfinished run of another recipe (fingerprint {previous.get('fingerprint')}); "
                "choose another --output, or rerun with --restart to discard it"
            )
        _check_inputs(run_dir, previous, inputs)
        _check_takedown(run_dir, previous, takedown)
        remove_temporaries(run_dir)  # the interrupted run's half-written files
        logger.info("resuming the unfinished run in %s", run_dir)
        return
    ensure_dir(run_dir)
    takedown.write(run_dir / REMOVED_FILE)
    write_json(marker, identity)
    with atomic_open(run_dir / "recipe.yaml", "w", encoding="utf-8") as handle:
        handle.write(recipe.to_yaml())


def _source(state: _RunState, first: bool) -> PartSource:
    """How a step reads its parts; the first step's read also accounts for skipped input (`skipped/`)."""
    return PartSource(
        state.recipe.input,
        state.recipe.output.batch_size,
        count_reader_stats=first,
        skipped_dir=state.run_dir / SKIPPED if first else None,
        strict=state.strict,
        documents_dir=state.run_dir / INDEX / DOCUMENTS if first else None,
    )


def _queue(
    state: _RunState,
    step: Step,
    description: str,
    task: Any,
    num_cpus: float,
    passes_input: bool = False,
    fold: Callable[[dict[str, Any]], None] | None = None,
) -> Queued:
    """Queue a per-part phase over the parts the queued phases leave (`chain.py`); it runs with them when a
    result is needed. `fold` sees each result as it arrives (and may take its bulky fields out of it)."""
    queued = state.chain.add(step, description, task, num_cpus, passes_input, fold)
    if not CHAIN_PHASES:
        _run_queued(state)
    return queued


def _results(state: _RunState, queued: Queued) -> list[dict[str, Any]]:
    """A queued phase's results, sorted by part, running the queue first if it has not run."""
    if queued.results is None:
        _run_queued(state)
    assert queued.results is not None
    return queued.results


def _map(
    state: _RunState,
    step: Step,
    description: str,
    task: Any,
    parts: list[PartSpec],
    num_cpus: float,
) -> list[dict[str, Any]]:
    """Run a phase over work items of its own (a group step's buckets, a sink's gather tasks) now, after
    the queued phases; the queue's parts stay as they are."""
    _run_queued(state)
    alone = PhaseChain(parts)
    phase = alone.add(step, description, task, num_cpus)
    _run_chain(state, alone)
    assert phase.results is not None
    return phase.results


def _run_queued(state: _RunState) -> None:
    """Run the queued phases as one engine phase."""
    _run_chain(state, state.chain)


def _run_chain(state: _RunState, chain: PhaseChain) -> None:
    """Run a chain's queued phases as one engine phase; count and time each of them under its own step."""
    if not chain.queue:
        return
    description = chain.description()
    chained = len(chain.queue) > 1
    state.progress.phase(description, len(chain.parts))
    start = Moment.now()
    ran = chain.run(state.engine, state.progress.advance)
    wall = time.monotonic() - start.mono
    last_of = {id(queued.owner): queued for queued in ran}  # each step's last phase in the chain
    for queued, begin, end in shares(ran):
        assert queued.results is not None
        state.collect(queued.description, queued.results)
        if state.timings is None:
            continue
        step_start, step_end = start.plus(wall * begin), start.plus(wall * end)
        state.timings.phase(
            queued.owner,
            queued.description,
            queued.results,
            step_start,
            step_end,
            description if chained else None,
        )
        if queued.owner in state.ending and last_of[id(queued.owner)] is queued:
            state.ending.remove(queued.owner)
            state.timings.end(queued.owner, step_end)


def _run_step(state: _RunState, step: Step, first: bool) -> None:
    """Queue or run the step's phases; the parts after it are `state.chain.parts` once the queue has run."""
    step_dir = state.run_dir / "stages" / step.dirname
    rejected_dir = state.run_dir / "rejected"
    keep_rejected = state.recipe.output.keep_rejected
    cpus = max((planned.entry.stage_class().resources.num_cpus for planned in step.stages), default=1.0)
    if step.kind == "map":
        task = MapTask(
            step.stages,
            _source(state, first),
            step_dir,
            rejected_dir,
            keep_rejected,
            state.borrower,
            state.takedown if first else None,
        )
        _queue(state, step, step.dirname, task, cpus)
        return
    (planned,) = step.stages
    if step.kind == "group":
        _run_group_step(state, step, planned, first, cpus)
        return
    if step.kind == "plan":
        _run_plan_step(state, step, planned, first, cpus)
        return
    stage_cls = planned.entry.stage_class()
    assert issubclass(stage_cls, SinkStage)
    sink_dir = state.run_dir / stage_cls.output_dirname
    context = SinkContext(
        recipe_name=state.recipe.name,
        recipe_fingerprint=state.recipe.fingerprint(),
        seed=state.recipe.seed,
        work_dir=step_dir,
    )
    sink_task = SinkTask(planned, _source(state, first), sink_dir, step_dir, context)
    queued = _queue(state, step, step.dirname, sink_task, cpus, passes_input=True)
    written = [r["written"] for r in _results(state, queued)]
    sink = planned.entry.build()
    assert isinstance(sink, SinkStage)
    plans = sink.plan_gather(written, context)
    gathered: list[dict[str, Any]] = []
    if plans:
        gather_task = GatherTask(
            planned, {p["name"]: p for p in plans}, sink_dir, step_dir / "gather", context
        )
        results = _map(state, step, f"{step.dirname} gather", gather_task, gather_task.parts(), cpus)
        gathered = [r["written"] for r in results]
    state.sink_results[planned.label] = sink.finalize(written, gathered, sink_dir, context)


def _run_group_step(state: _RunState, step: Step, planned: PlannedStage, first: bool, cpus: float) -> None:
    """The keys phase (queued after the steps before), the resolution, then applying its decisions (queued)."""
    stage_cls = planned.entry.stage_class()
    assert issubclass(stage_cls, GroupStage)
    step_dir = state.run_dir / "stages" / step.dirname
    source = _source(state, first)
    # The buckets are counted from the parts the queue starts from, which are known before the steps
    # queued ahead of the keys phase have run (a part they leave empty writes no keys).
    layout = group_layout(step_dir, state.chain.parts, state.run_dir / INDEX / step.dirname)
    keys_task = KeysTask(planned, source, layout, state.borrower)
    keys = _results(state, _queue(state, step, f"{step.dirname} keys", keys_task, cpus, passes_input=True))

    def map_phase(
        description: str, task: Any, items: list[PartSpec], num_cpus: float
    ) -> list[dict[str, Any]]:
        return _map(state, step, description, task, items, num_cpus)

    layout, decisions = resolve_duplicates(map_phase, planned, layout, keys, cpus)
    apply_task = ApplyDuplicatesTask(
        planned.label,
        stage_cls.drop_reason,
        layout,
        decisions,
        _source(state, False),
        step_dir,
        state.run_dir / "rejected",
        state.recipe.output.keep_rejected,
        state.borrower,
    )
    _queue(state, step, f"{step.dirname} apply", apply_task, 1.0)


def _run_plan_step(state: _RunState, step: Step, planned: PlannedStage, first: bool, cpus: float) -> None:
    """Accounting rounds until the stage's plan is final (the first queued after the steps before), then the
    plan applied to every part (queued)."""
    step_dir = state.run_dir / "stages" / step.dirname
    stage = planned.entry.build()
    assert isinstance(stage, PlanStage)
    plan: dict[str, Any] | None = None
    for round_number in range(1, 100):
        # Accounting rounds count nothing: the apply phase below is the read that accounts for the input.
        task = AccountTask(planned, _source(state, False), step_dir / f"account-{round_number}", plan)
        merged: dict[str, Any] | None = None

        def fold(result: dict[str, Any]) -> None:
            # Summaries are merged as they arrive, so the driver holds one, not one per part.
            nonlocal merged
            account = result.pop("account", None)
            if account is not None:
                merged = account if merged is None else stage.merge(merged, account)

        description = f"{step.dirname} account {round_number}"
        _results(state, _queue(state, step, description, task, cpus, passes_input=True, fold=fold))
        plan, final = stage.plan(_canonical(merged or {}), plan)
        if final:
            break
    else:  # pragma: no cover - a stage that never settles is a bug in the stage
        raise RuntimeError(f"{planned.label}: the plan did not settle after 99 accounting rounds")
    write_json(step_dir / "plan.json", plan)
    state.plans[planned.label] = plan
    task = ApplyPlanTask(
        planned,
        plan,
        _source(state, first),
        step_dir,
        state.run_dir / "rejected",
        state.recipe.output.keep_rejected,
        state.borrower,
    )
    _queue(state, step, f"{step.dirname} apply", task, cpus)


def _canonical(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with every mapping in key order: merging adds integers, so only key order can differ
    between arrival orders, and the plan must not depend on it."""
    return json.loads(json.dumps(summary, sort_keys=True))


def _link_documents(run_dir: Path, parts: list[PartSpec]) -> None:
    documents = run_dir / "documents"
    remove_tree(documents)
    ensure_dir(documents)
    for part in parts:
        target = documents / f"{part.name}.parquet"
        if part.fmt != INTERMEDIATE:
            # A recipe of sink stages only: the inputs themselves are the documents; they stay where they are.
            continue
        (source,) = part.uris
        copy_file(run_path(source), target)


def _write_stats(state: _RunState, engine: str, incremental: dict[str, Any] | None) -> dict[str, Any]:
    """Write `stats.json`: the stages' counts, documents and tokens out, plans, sinks, the incremental summary,
    and `nodes`: per node that ran part tasks, how many (`parts`) and how many in each phase (`phases`)."""
    stages = []
    for label in sorted(state.stats):
        stages.append({"label": label, **state.stats[label].to_dict()})
    documents = sum(
        open_parquet(p).metadata.num_rows for p in sorted((state.run_dir / "documents").glob("*.parquet"))
    )
    tokens = sum(int(result.get("total_tokens", 0)) for result in state.sink_results.values())
    data = {
        "recipe": state.recipe.name,
        "fingerprint": state.recipe.fingerprint(),
        "engine": engine,
        "stages": stages,
        "documents_out": documents,
        "tokens_written": tokens,
        "plans": state.plans,
        "sinks": state.sink_results,
        "incremental": incremental,
        "nodes": state.nodes,
    }
    write_json(state.run_dir / "stats.json", data)
    return data


def _write_manifest(state: _RunState, engine: str, started: str, stats: dict[str, Any]) -> None:
    files = []
    for folder in ("documents", "rejected", SKIPPED, "shards"):
        for path in sorted((state.run_dir / folder).rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                files.append(
                    {
                        "path": str(path.relative_to(state.run_dir)),
                        "bytes": path.stat().st_size,
                        "sha256": sha256_file(path),
                    }
                )
    manifest = {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "corpusmill_version": __version__,
        "recipe": state.recipe.name,
        "fingerprint": state.recipe.fingerprint(),
        "engine": engine,
        "started_at": started,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "documents": stats["documents_out"],
        "tokens": stats["tokens_written"],
        "files": files,
    }
    write_json(state.run_dir / "manifest.json", manifest)
