"""The Ray engine: parts become Ray tasks, run by worker processes that keep a phase's stages set up.

Without an address, a local Ray instance is started for the run and stopped after it (the embedded default);
with `address`, the same run goes to an existing cluster (workers need corpusmill installed and the run
directory on storage every node reaches: object storage, or a shared mount). Each worker process builds a phase's stages once (`setup`), then processes
whole parts (or hash buckets of a deduplication step) as Arrow batches. Each part's result names the Ray
node that ran it (its node id, as `ray.nodes()` lists it), so a run's `stats.json` shows how the parts spread.

Parts are plain Ray tasks rather than rows of a Ray Data dataset mapped by a function: a part task reads and
writes its own files, so no data flows through the engine, and Ray Data's machinery costs CPU for nothing
here. Measured on two cores: its first execution starts two helper actors in processes of their own (about
5 CPU-seconds, and their idle load for the rest of the run), each phase's executor costs 0.15-0.25
CPU-seconds to set up, and while a phase runs the executor's scheduling loop, which polls ten times a second,
and the actors' bookkeeping cost about 0.05 CPU-seconds per second. Tasks submitted and awaited with
`ray.wait` cost about 0.01 CPU-seconds per phase on workers that are ready, and nothing while they run.

A local instance (`ray_local.py`: Ray's head node without the autoscaler and log monitors, which a one-run
instance has no use for) is ready when its workers are: the engine has each of them import corpusmill's task
modules before it returns, so that this start-up cost is the engine's, not the first phase's. Before starting
one, the engine stops what an earlier run's instance left running when that run was killed
(`ray_leftovers.py`). Without a log monitor, the warnings a part logs travel back with its result and are
logged by the driver (`part_logs.py`).

A part's error reaches the caller as itself: Ray raises it wrapped (a `RayTaskError` whose message is the
worker's traceback), and the engine raises the original with the wrapper as its cause, so that the CLI can
print a full disk as one line and the wrapper's traceback is still there for `--debug`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from corpusmill.pipelines import part_logs, ray_local
from corpusmill.pipelines.engine import NODE, Engine, PartTask, prepare_worker_process
from corpusmill.pipelines.parts import PartSpec

logger = logging.getLogger(__name__)


# The task set up in this worker process, keyed by the phase it belongs to. Ray reuses worker processes across
# tasks, so a stage's models load once per process and phase, not once per part; a new phase closes the old task
# (stopping, e.g., the extraction sandbox) before setting up its own.
# This gives what an actor pool would (models loaded once per worker) without starting fresh actors for every
# phase, which measured about 6 s per phase on two cores.
_active: tuple[str, PartTask] | None = None


def _run_part(part: str, phase: str, task: PartTask, forward_logs: bool = False) -> dict[str, Any]:
    """Run the phase's task on a part, in a worker; the result names the Ray node it ran on.

    With `forward_logs` (a local instance without a log monitor), the warnings logged while the part ran travel
    back with its result, for the driver to log (`part_logs`).
    """
    global _active
    import ray

    with part_logs.collected(forward_logs) as records:
        if _active is None or _active[0] != phase:
            if _active is not None:
                _active[1].close()
            task.setup()
            _active = (phase, task)
        result = _active[1](PartSpec.from_json(part))
    return {**result, NODE: ray.get_runtime_context().get_node_id(), **part_logs.attach(records)}


def _ready_worker(hold_s: float) -> int:
    """Run once on each worker of a new local instance: load what every part task needs.

    Ray starts one worker process per CPU with the instance, but they still have corpusmill's task modules and
    pyarrow's pandas bridge to load (`prepare_worker_process`), which would otherwise happen inside the first
    phase. Holding each worker a moment keeps the next call from landing on the same one.
    """
    prepare_worker_process(dedicated=True)
    time.sleep(hold_s)
    return os.getpid()


def _use_cluster_token_if_available() -> None:
    """Clusters started with `ray start` require token authentication by default; a client must opt in.

    When the user has not chosen an auth mode and a token is at hand (in the environment or the file
    `ray start` writes), connect with it; otherwise leave Ray's defaults alone. Ray reads its settings from
    the environment when it is imported: where it already was (and is not connected), it is told to read
    them again, as Ray does when it turns token authentication on itself.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"
        ray = sys.modules.get("ray")
        if ray is not None and not ray.is_initialized():
            from ray._raylet import Config

            Config.initialize("")


class RayEngine(Engine):
    """Ray Data execution, local or on a cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        if address:
            _use_cluster_token_if_available()
        import ray

        self._ray = ray
        self._instance: ray_local.LocalInstance | None = None
        self._owns_instance = not ray.is_initialized()
        if self._owns_instance:
            os.environ.setdefault("RAY_DEDUP_LOGS", "1")
            init_args: dict[str, Any] = {"logging_level": logging.ERROR}
            if address:
                try:
                    ray.init(address=address, include_dashboard=False, log_to_driver=True, **init_args)
                except ConnectionError as exc:
                    raise ConnectionError(
                        f"cannot reach the Ray cluster at {address}: {exc}. Check the address (host:port of the "
                        "head's GCS), and that RAY_AUTH_MODE and the cluster token (RAY_AUTH_TOKEN, "
                        "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) match the cluster's authentication."
                    ) from exc
            else:
                cpus = num_cpus or os.cpu_count() or 1
                self._instance = ray_local.start(cpus, init_args)
                self._ready_workers(cpus)
        # Workers hand their log records back with each part where the driver does not print their output.
        self._forward_logs = self._instance is not None and self._instance.lean
        # Spread over the nodes of a cluster (Ray's default packs one node first), as Ray Data's map does.
        # Retried when a worker dies (killed for memory, crashed in native code), never on a stage's error.
        self._run_part = ray.remote(max_retries=3, scheduling_strategy="SPREAD")(_run_part)

    def _ready_workers(self, count: int, rounds: int = 5) -> None:
        """Have `count` distinct workers run `_ready_worker`, as Beam's pool waits for its processes.

        Their imports then count as the engine's start-up, not as the first phase's work. A worker still
        booting when a round is sent leaves its call to another one, so rounds repeat (a few at most) until
        that many distinct workers have answered.
        """
        ready = self._ray.remote(num_cpus=1)(_ready_worker)
        answered: set[int] = set()
        for _ in range(rounds):
            answered.update(self._ray.get([ready.remote(0.1) for _ in range(count)]))
            if len(answered) >= count:
                return

    def map_parts(
        self, task: PartTask, parts: Sequence[PartSpec], num_cpus: float = 1.0
    ) -> Iterator[dict[str, Any]]:
        """One Ray task per part, results as they finish; each worker process keeps the phase's task set up."""
        if not parts:
            return
        ray = self._ray
        task_ref = ray.put(task)  # stored once, not serialised again for every part
        phase = uuid.uuid4().hex
        run = self._run_part.options(num_cpus=num_cpus)
        pending = [run.remote(part.to_json(), phase, task_ref, self._forward_logs) for part in parts]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield self._result(done[0])
        finally:
            for ref in pending:  # the caller stopped early (an error): do not leave parts running
                ray.cancel(ref)

    def _result(self, ref: Any) -> dict[str, Any]:
        """A part's result; a part's error raised as itself, with Ray's wrapper (the worker's traceback) as cause."""
        try:
            return part_logs.emit(self._ray.get(ref))
        except self._ray.exceptions.RayTaskError as exc:
            if not isinstance(exc.cause, Exception):
                raise
            raise exc.cause from exc

    def close(self) -> None:
        """Stop the local instance if this engine started it; disconnect from a cluster it connected to."""
        if self._instance is not None:
            self._instance.close()
            self._instance = None
        elif self._owns_instance and self._ray.is_initialized():
            self._ray.shutdown()
