"""Consecutive per-part phases of different steps, run as one engine phase: each part goes through them in turn.

Between two points where the driver needs every part's result (a deduplication step's resolution, a plan
stage's accounting, a sink's gather), a run's phases only hand each part's file to the next: part 7 of
`tokenize` reads part 7 of the dedup step's output, and the sink's write reads part 7 of that. Run as separate
engine phases, each pays what a phase costs an engine whatever it does (a pipeline run and fresh harnesses
on Beam, about 0.07 CPU-seconds on two cores, measured; on a cluster a scheduling round and a barrier), and
each waits for the slowest part of the one before. So the runner queues such phases (`PhaseChain`) and hands
them to the engine as one `ChainTask` when a result is needed.

A link is the step's own part task: it writes the same files and the same marker as it would in a phase of
its own, so a chained run is byte for byte an unchained one, and a killed one resumes link by link (a link
that finds its marker returns it). A part that a link leaves empty (every document dropped) goes no further,
as the runner's next phase would not have had it. The driver splits each chain result into the links'
results, so the stats, `nodes` and `timings.json` keep one entry per step's phase.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from corpusmill.pipelines.engine import NODE, Engine, PartTask
from corpusmill.pipelines.parts import PartSpec, output_part, reading_back

# The fields of a chain's result: each link's result (None where the part did not reach it), and the seconds
# each link took on the worker (absent when the engine read the results back from the markers).
LINKS, SECONDS = "links", "link_seconds"


@dataclass(frozen=True)
class Link:
    """One step's part task in a chain. `passes_input`: the next link reads the part this one read (a sink's
    write, an accounting round: they write no documents), not this one's output."""

    task: PartTask
    passes_input: bool = False


@dataclass
class ChainTask:
    """A part task that runs its links one after another on the part, each on what the one before left."""

    links: tuple[Link, ...]

    def setup(self) -> None:
        """Set up every link once per worker, as each would be at the start of its own phase."""
        for link in self.links:
            link.task.setup()

    def close(self) -> None:
        """Close every link (all of them, even when one fails to)."""
        with ExitStack() as stack:
            for link in self.links:
                stack.callback(link.task.close)

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Each link's result on the part, in order; None for links after one that left the part empty."""
        results: list[dict[str, Any] | None] = []
        seconds: list[float] = []
        current: PartSpec | None = part
        for link in self.links:
            if current is None:
                results.append(None)
                seconds.append(0.0)
                continue
            began = time.perf_counter()
            result = link.task(current)
            seconds.append(time.perf_counter() - began)
            results.append(result)
            if not link.passes_input:
                current = output_part(result)
        chained: dict[str, Any] = {"part": part.name, LINKS: results}
        if not reading_back():
            chained[SECONDS] = seconds
        return chained


@dataclass
class Queued:
    """A phase queued in a `PhaseChain`; `results` are filled in (sorted by part) once its chain has run."""

    owner: Any  # what the caller files the results under (the runner's step)
    description: str
    task: PartTask
    num_cpus: float
    passes_input: bool
    fold: Callable[[dict[str, Any]], None] | None
    parts: list[PartSpec] = field(default_factory=list)
    results: list[dict[str, Any]] | None = None
    share: float = 0.0  # of the chain's wall time


@dataclass
class PhaseChain:
    """The driver's queue of per-part phases not yet run, and the parts they start from.

    `parts` are the parts the queued phases start from, or, with none queued, the parts after the last phase
    that ran. `run()` runs the queue as one engine phase and returns its phases with their results.
    """

    parts: list[PartSpec]
    queue: list[Queued] = field(default_factory=list)

    def add(
        self,
        owner: Any,
        description: str,
        task: PartTask,
        num_cpus: float,
        passes_input: bool = False,
        fold: Callable[[dict[str, Any]], None] | None = None,
    ) -> Queued:
        """Queue a phase over the parts the queue's last phase leaves."""
        queued = Queued(owner, description, task, num_cpus, passes_input, fold)
        self.queue.append(queued)
        return queued

    def holds(self, owner: Any) -> bool:
        """Whether a phase of `owner` is queued."""
        return any(queued.owner == owner for queued in self.queue)

    def description(self) -> str:
        """The queued phases' descriptions, joined: what the progress display shows for the chain."""
        return ", ".join(queued.description for queued in self.queue)

    def run(self, engine: Engine, on_result: Callable[[], None] = lambda: None) -> list[Queued]:
        """Run the queue on `engine` (`on_result` is called as each part finishes); the phases come back with
        their results, parts, and share of the wall time, and `parts` become the parts after the last."""
        queue, self.queue = self.queue, []
        if not queue:
            return []
        num_cpus = max(queued.num_cpus for queued in queue)
        if len(queue) == 1:
            (only,) = queue
            results = []
            for result in engine.map_parts(only.task, self.parts, num_cpus=num_cpus):
                if only.fold is not None:
                    only.fold(result)
                results.append(result)
                on_result()
            only.parts, only.results, only.share = list(self.parts), _sorted(results), 1.0
        else:
            chained = []
            task = ChainTask(tuple(Link(queued.task, queued.passes_input) for queued in queue))
            for result in engine.map_parts(task, self.parts, num_cpus=num_cpus):
                for queued, link_result in zip(queue, result[LINKS], strict=True):
                    if link_result is not None and queued.fold is not None:
                        queued.fold(link_result)
                chained.append(result)
                on_result()
            _split(queue, self.parts, chained)
        self.parts = _parts_after(queue[-1])
        return queue


def _sorted(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(results, key=lambda result: result["part"])


def _split(queue: list[Queued], parts: Sequence[PartSpec], chained: list[dict[str, Any]]) -> None:
    """Give each phase its links' results (with the chain's node), parts, and share of the wall time: in
    proportion to the seconds its links took on the workers, or equal where the engine did not say."""
    chained = _sorted(chained)
    current = list(parts)
    for position, queued in enumerate(queue):
        queued.parts = current
        queued.results = [
            {**result[LINKS][position], **({NODE: result[NODE]} if NODE in result else {})}
            for result in chained
            if result[LINKS][position] is not None
        ]
        current = _parts_after(queued)
    seconds = [
        sum(result.get(SECONDS, [0.0] * len(queue))[position] for result in chained)
        for position in range(len(queue))
    ]
    total = sum(seconds)
    for position, queued in enumerate(queue):
        queued.share = seconds[position] / total if total > 0 else 1 / len(queue)


def _parts_after(queued: Queued) -> list[PartSpec]:
    """What the next phase reads after a phase: its own parts again, or its outputs (parts left empty gone)."""
    if queued.passes_input:
        return list(queued.parts)
    assert queued.results is not None
    return [part for part in map(output_part, queued.results) if part is not None]


def shares(queue: Sequence[Queued]) -> Iterator[tuple[Queued, float, float]]:
    """Each phase with the fractions of the chain's wall time where its slice begins and ends."""
    begin = 0.0
    for queued in queue:
        end = min(1.0, begin + queued.share)
        yield queued, begin, end
        begin = end
