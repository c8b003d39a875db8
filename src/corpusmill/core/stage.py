"""The stage protocol and the registry of versioned stage names.

A stage is a small object with declared input and output columns, an idempotent `setup()` that loads models
once per worker, and `__call__(batch) -> batch`. Stages never import an engine: the engine adapters only see
this protocol. Stages are registered under versioned names (`langid_v1`); a recipe may name a stage bare
(`langid`), which resolves to the newest version, and the resolved name is what a run is keyed by, so a new
version of a stage can never silently change the output of an existing run.

Three kinds of stage exist:
- `MapStage`: one batch in, one batch out; rows it rejects get a `drop_reason` instead of vanishing.
- `GroupStage`: whole-dataset deduplication written as map -> group by key -> map. The stage emits
  `(key, id)` rows; the engine groups them; documents sharing a key are linked, the stage may confirm each
  candidate link (e.g. by estimated Jaccard similarity), connected components are resolved by id, and every
  member but the smallest id is dropped.
- `PlanStage`: a per-document stage whose decisions need whole-dataset counts first (e.g. a mixture's
  sampling rates): the engine maps `account` over every part, the driver merges the results and calls
  `plan`, possibly for several rounds, then maps `apply` with the final plan. `apply` may mark drops and may
  return extra rows (repeated copies with new ids).
- `SinkStage`: writes kept documents somewhere (token shards) and adds a manifest. It works in up to two
  parallel phases: `write_part` per part (scatter), then optionally `gather` per output group it plans from
  what the parts reported (e.g. a global shuffle into shards by hash range), then `finalize` on the driver.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from corpusmill.core.cpu_time import tree_cpu_seconds
from corpusmill.core.labels import LabelReference, LabelSet
from corpusmill.core.stats import Stats

# The stats entry (running moments: count = set-ups, mean = CPU seconds each) of what `Stage.setup` cost.
SETUP_CPU_SECONDS = "setup.cpu_seconds"


class StageParams(BaseModel):
    """Base of every stage's parameter model: unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def label_references(self) -> list[LabelReference]:
        """Values these parameters name in a column, so a recipe naming a value no stage writes is refused."""
        return []


class NamesPath:
    """Marks a stage parameter that names a file or directory the stage reads (a local path or a URI), e.g.
    `model: Annotated[str, NAMES_PATH]`: whoever checks a recipe for another machine (the service, resolving
    paths the way the cluster will) finds every such parameter by the marker, not by stage."""

    def __repr__(self) -> str:
        return "NAMES_PATH"


NAMES_PATH = NamesPath()


def path_params(params: type[StageParams]) -> list[str]:
    """The names of a parameter model's fields marked with NAMES_PATH (a str, a list of str, or None)."""
    return [
        name
        for name, field in params.model_fields.items()
        if any(isinstance(meta, NamesPath) for meta in field.metadata)
    ]


class NoParams(StageParams):
    """For stages that take no parameters."""


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs; engines map this onto their own scheduling."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory_gb: float = 0.0


class Stage(ABC):
    """Common ground of all stage kinds."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    Params: ClassVar[type[StageParams]] = NoParams
    requires: ClassVar[tuple[str, ...]] = ()
    removes: ClassVar[tuple[str, ...]] = ()
    resources: ClassVar[Resources] = Resources()
    # Columns this stage fills from a fixed vocabulary, so parameters naming other values can be refused.
    column_labels: ClassVar[dict[str, LabelSet]] = {}

    def __init__(self, params: StageParams | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.stats = Stats()
        self._ready = False

    @classmethod
    def versioned_name(cls) -> str:
        """The registry key, e.g. `langid_v1`."""
        return f"{cls.name}_v{cls.version}"

    def output_fields(self) -> list[pa.Field]:
        """Columns this stage adds or rewrites (types fixed, so all parts share one schema)."""
        return []

    def setup(self) -> None:
        """Load models and open resources; safe to call many times, does the work once per worker.

        What the work cost (CPU of this process and of any process it started, such as the extraction
        sandbox) is observed as `setup.cpu_seconds` in the stage's stats: a run's `stats.json` then says per
        stage how many workers set it up and what that cost, which does not grow with the corpus.
        """
        if not self._ready:
            started = tree_cpu_seconds()
            self._setup()
            self._ready = True
            self.stats.observe(SETUP_CPU_SECONDS, max(0.0, tree_cpu_seconds() - started))

    def _setup(self) -> None:
        """Override to load what the stage needs."""

    def close(self) -> None:
        """Release worker resources (subprocesses, files); the stage may be set up again later."""
        self._ready = False

    def take_stats(self) -> Stats:
        """Hand over the stats gathered so far and start afresh (one part's worth at a time)."""
        stats, self.stats = self.stats, Stats()
        return stats


class MapStage(Stage):
    """A per-batch transformation; rejected rows are marked with `schema.mark_drops`."""

    @abstractmethod
    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Transform one batch; the output has the same rows, in the same order."""


class GroupStage(Stage):
    """Deduplication over the whole dataset, keyed by document id."""

    drop_reason: ClassVar[str]

    @abstractmethod
    def keys(self, batch: pa.RecordBatch) -> pa.Table:
        """Rows `(key: binary, id: string)`: documents sharing a key are duplicates of one another."""

    def keys_and_side_data(self, batch: pa.RecordBatch) -> tuple[pa.Table, pa.Table | None]:
        """The keys, plus per-document data (with an `id` column) that `confirm` needs later, if any."""
        return self.keys(batch), None

    def confirm(self, edges: pa.Table, side: pa.Table | None) -> pa.Table:
        """Keep only the candidate edges `(id, duplicate_of)` that really are duplicates (default: all)."""
        return edges


class PlanStage(Stage):
    """Account over the whole dataset, plan on the driver, then apply the plan to every document."""

    account_columns: ClassVar[tuple[str, ...] | None] = None  # columns `account` reads (None: all)

    @abstractmethod
    def account(self, batch: pa.RecordBatch, plan: dict[str, Any] | None) -> dict[str, Any]:
        """A JSON-able summary of one batch for the current round (`plan` is the previous round's, or None)."""

    @abstractmethod
    def merge(self, left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
        """Combine two summaries (associative and commutative, so any engine may merge in any order)."""

    @abstractmethod
    def plan(self, account: dict[str, Any], previous: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
        """The plan from this round's merged summary; True when final, False to account again with it."""

    @abstractmethod
    def apply(self, batch: pa.RecordBatch, plan: dict[str, Any]) -> pa.RecordBatch:
        """Documents under the final plan: drops marked; rows may repeat (copies carry new ids)."""


@dataclass(frozen=True)
class SinkContext:
    """What a sink may know about its run beyond its own parameters."""

    recipe_name: str
    recipe_fingerprint: str
    seed: int
    work_dir: Path  # the step's private scratch directory (staging files); the sink owns what it puts there


class SinkStage(Stage):
    """Consumes kept documents part by part and writes them somewhere."""

    output_dirname: ClassVar[str] = "shards"

    @abstractmethod
    def write_part(
        self, batches: Iterable[pa.RecordBatch], out_dir: Path, part_name: str, context: SinkContext
    ) -> dict[str, Any]:
        """Write (or stage) one part's documents; return a JSON-able description of what was written."""

    def plan_gather(self, parts: list[dict[str, Any]], context: SinkContext) -> list[dict[str, Any]]:
        """Second-phase tasks, each a JSON-able dict with a unique `name`, planned from every part's result.

        The default plans none: the parts' own output is final.
        """
        return []

    def gather(self, task: dict[str, Any], out_dir: Path, context: SinkContext) -> dict[str, Any]:
        """Run one planned second-phase task; return a JSON-able description of what it wrote."""
        raise NotImplementedError(f"{self.versioned_name()} plans no gather tasks")

    @abstractmethod
    def finalize(
        self,
        parts: list[dict[str, Any]],
        gathered: list[dict[str, Any]],
        out_dir: Path,
        context: SinkContext,
    ) -> dict[str, Any]:
        """Combine what the phases wrote (e.g. into a manifest); runs once, on the driver."""


_REGISTRY: dict[str, type[Stage]] = {}
_VERSIONED = re.compile(r"^(?P<base>[a-z][a-z0-9_]*?)_v(?P<version>\d+)$")


def register(cls: type[Stage]) -> type[Stage]:
    """Class decorator: make a stage available to recipes under its versioned name."""
    key = cls.versioned_name()
    if key in _REGISTRY and _REGISTRY[key] is not cls:
        raise ValueError(f"stage {key} is registered twice")
    _REGISTRY[key] = cls
    return cls


def _load_builtin_stages() -> None:
    # Imported here, not at module top, so that importing the protocol stays cheap and cycle-free.
    import corpusmill.stages  # noqa: F401


def available_stages() -> list[str]:
    """All registered versioned names, sorted."""
    _load_builtin_stages()
    return sorted(_REGISTRY)


def resolve_stage(name: str) -> type[Stage]:
    """Find a stage by versioned name, or by bare name (the newest version); KeyError lists the choices."""
    _load_builtin_stages()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if not _VERSIONED.match(name):
        versions = [cls for cls in _REGISTRY.values() if cls.name == name]
        if versions:
            return max(versions, key=lambda cls: cls.version)
    bare = sorted({cls.name for cls in _REGISTRY.values()})
    raise KeyError(
        f"unknown stage {name!r}; allowed: {', '.join(bare)} (or a versioned name: {', '.join(sorted(_REGISTRY))})"
    )
