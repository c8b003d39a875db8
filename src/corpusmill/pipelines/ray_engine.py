"""The Ray Data engine: parts become rows of a Ray dataset, mapped by tasks that keep their stages per process.

Without an address, a local Ray instance is started for the run and stopped after it (the embedded default);
with `address`, the same run goes to an existing cluster (workers need corpusmill installed and the run
directory on shared storage). Each worker process builds a phase's stages once (`setup`), then processes
whole parts as Arrow batches; grouping for deduplication uses Ray Data's own `groupby(...).map_groups(...)`.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from corpusmill.core.grouping import EDGE_SCHEMA, star_edges
from corpusmill.pipelines.engine import Engine, PartTask
from corpusmill.pipelines.parts import PartSpec

logger = logging.getLogger(__name__)


# The task set up in this worker process, keyed by the phase it belongs to. Ray reuses worker processes across
# tasks, so a stage's models load once per process and phase, not once per part; a new phase closes the old task
# (stopping, e.g., the extraction sandbox) before setting up its own.
# This gives what an actor pool would (models loaded once per worker) without starting fresh actors for every
# phase, which measured about 6 s per phase on two cores.
_active: tuple[str, PartTask] | None = None


def _run_part(row: dict[str, Any], *, phase: str, task: PartTask) -> dict[str, Any]:
    global _active
    if _active is None or _active[0] != phase:
        if _active is not None:
            _active[1].close()
        task.setup()
        _active = (phase, task)
    return {"result": json.dumps(_active[1](PartSpec.from_json(row["part"])))}


def _edges_of_group(group: pa.Table) -> pa.Table:
    return star_edges(group)


def _use_cluster_token_if_available() -> None:
    """Clusters started with `ray start` require token authentication by default; a client must opt in.

    When the user has not chosen an auth mode and a token is at hand (in the environment or the file
    `ray start` writes), connect with it; otherwise leave Ray's defaults alone.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


class RayEngine(Engine):
    """Ray Data execution, local or on a cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        if address:
            _use_cluster_token_if_available()
        import ray

        self._ray = ray
        self._owns_instance = not ray.is_initialized()
        if self._owns_instance:
            os.environ.setdefault("RAY_DEDUP_LOGS", "1")
            init_args: dict[str, Any] = {
                "include_dashboard": False,
                "logging_level": logging.ERROR,
                "log_to_driver": True,
            }
            if address:
                init_args["address"] = address
            else:
                init_args["num_cpus"] = num_cpus or os.cpu_count() or 1
            try:
                ray.init(**init_args)
            except ConnectionError as exc:
                raise ConnectionError(
                    f"cannot reach the Ray cluster at {address}: {exc}. Check the address (host:port of the head's "
                    "GCS), and that RAY_AUTH_MODE and the cluster token (RAY_AUTH_TOKEN, "
                    "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) match the cluster's authentication."
                ) from exc
        from ray.data import DataContext

        context = DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        # Our own progress bars and summary say what Ray Data's per-dataset log lines would; the notice that
        # its bars are off is logged once per process, so using up that "once" here keeps it off the screen.
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        from ray.util.debug import log_once

        log_once("ray_data_progress_manager_disabled")

    def map_parts(
        self, task: PartTask, parts: Sequence[PartSpec], num_cpus: float = 1.0
    ) -> Iterator[dict[str, Any]]:
        """One dataset row per part, mapped by Ray tasks; each worker process keeps the phase's task set up."""
        if not parts:
            return
        rows = [{"part": part.to_json()} for part in parts]
        dataset = self._ray.data.from_items(rows, override_num_blocks=len(rows))
        mapped = dataset.map(
            _run_part, fn_kwargs={"phase": uuid.uuid4().hex, "task": task}, num_cpus=num_cpus
        )
        for row in mapped.iter_rows():
            yield json.loads(row["result"])

    def group_edges(self, key_files: Sequence[str]) -> pa.Table:
        """Ray Data groupby on the key column; each group becomes star edges."""
        if not key_files:
            return EDGE_SCHEMA.empty_table()
        keys = self._ray.data.read_parquet(list(key_files))
        edges = keys.groupby("key").map_groups(_edges_of_group, batch_format="pyarrow")
        tables = [self._ray.get(ref) for ref in edges.to_arrow_refs()]
        tables = [t.select(EDGE_SCHEMA.names).cast(EDGE_SCHEMA) for t in tables if t.num_rows]
        return pa.concat_tables(tables) if tables else EDGE_SCHEMA.empty_table()

    def close(self) -> None:
        """Stop the local instance if this engine started it."""
        if self._owns_instance and self._ray.is_initialized():
            self._ray.shutdown()
