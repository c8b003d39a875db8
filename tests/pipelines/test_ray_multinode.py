"""A Ray cluster of two nodes: the parts of a run spread over both, and the output is the in-process engine's.

The run directory is on an S3 server (moto's, on loopback; the nodes reach it through the environment they
were started in), so the nodes share nothing but the object store.

The head and a second node are two `ray start --block` processes on this machine, each with one CPU and a
temporary directory of its own (the address file included, so nothing outside the test finds this cluster).
Each is stopped by its own process id at the end; `ray stop` would stop every Ray instance on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from upath import UPath

from corpusmill.core.recipe import parse_recipe
from corpusmill.pipelines.runner import REUSED, run_recipe
from s3kit import Bucket

pytestmark = pytest.mark.ray

RAY = str(Path(sys.executable).with_name("ray"))
STARTED = "Ray runtime started"


@dataclass
class _Node:
    process: subprocess.Popen[bytes]
    temp_dir: Path

    @property
    def log(self) -> Path:
        return self.temp_dir / "start.log"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_node(args: list[str], env: dict[str, str]) -> _Node:
    """`ray start --block` with one CPU and its own temporary directory, once it says the node is up.

    The temporary directory is short: Ray's sockets live under it, and a socket path is at most 107 bytes.
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="cm-ray-"))
    with (temp_dir / "start.log").open("wb") as log:
        process = subprocess.Popen(
            [
                RAY,
                "start",
                *args,
                "--num-cpus=1",
                "--object-store-memory=80000000",
                f"--temp-dir={temp_dir}",
                "--disable-usage-stats",
                "--block",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    node = _Node(process, temp_dir)
    deadline = time.monotonic() + 120
    while STARTED not in node.log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop_node(node)
            pytest.fail(
                f"`ray start {' '.join(args)}` did not start:\n{node.log.read_text(errors='replace')}"
            )
        time.sleep(0.2)
    return node


def _stop_node(node: _Node) -> None:
    """SIGTERM to the `ray start --block` process, which stops the node's processes; a kill if it hangs."""
    if node.process.poll() is None:
        node.process.send_signal(signal.SIGTERM)
        try:
            node.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait()
    shutil.rmtree(node.temp_dir, ignore_errors=True)


@pytest.fixture()
def two_node_cluster() -> Iterator[str]:
    """The address of a head and one more node, both on this machine."""
    # Nodes started by `ray start` use token authentication; the second must join with the head's token.
    env = {key: value for key, value in os.environ.items() if key != "RAY_AUTH_MODE"}
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"  # stop at once when told to (nothing to drain here)
    address = f"127.0.0.1:{_free_port()}"
    nodes = [_start_node(["--head", f"--port={address.rsplit(':', 1)[1]}", "--include-dashboard=false"], env)]
    try:
        nodes.append(_start_node([f"--address={address}"], {**env, "RAY_AUTH_MODE": "token"}))
        yield address
    finally:
        for node in reversed(nodes):
            _stop_node(node)
        os.environ.pop("RAY_AUTH_MODE", None)  # the engine set it to reach the cluster


def _corpus(directory: Path) -> Path:
    """Six small files (one part each), with copies of documents inside files and across them."""
    directory.mkdir()
    for number in range(6):
        rows = [
            {
                "id": f"f{number}-{line}",
                "text": f"Notice {(number * 3 + line) % 14} from the harbour office: the northern pier reopens "
                "after the storm repairs, and the ferry keeps its winter timetable until further notice.",
            }
            for line in range(5)
        ]
        (directory / f"docs-{number}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return directory


def _files(run_dir: Path | UPath) -> list[dict]:
    return json.loads((run_dir / "manifest.json").read_text())["files"]


def test_a_run_on_two_nodes_spreads_its_parts_and_writes_the_local_output(
    s3_bucket: Bucket, two_node_cluster: str, tmp_path: Path
) -> None:
    import ray

    recipe = parse_recipe(
        {
            "name": "two-nodes",
            "input": {"paths": [str(_corpus(tmp_path / "input") / "*.jsonl")], "part_bytes": 1},
            "stages": [
                {"stage": "dedup_exact"},
                {"stage": "tokenize"},
                {"stage": "write_shards", "max_tokens_per_shard": 200},
            ],
        }
    )
    reference = run_recipe(recipe, engine="local", output=tmp_path / "local")
    # The run directory is on the S3 server: no node reads another's files from a disk they share.
    run = run_recipe(recipe, engine="ray", address=two_node_cluster, output=s3_bucket.uri("runs/two-nodes"))
    assert str(run.run_dir) == s3_bucket.uri("runs/two-nodes")
    assert not ray.is_initialized()  # the engine let go of the cluster

    nodes = json.loads((run.run_dir / "stats.json").read_text())["nodes"]
    assert REUSED not in nodes
    # Both nodes of the cluster ran part tasks (the ids are theirs: `ray start` gave each one CPU).
    with _connected(two_node_cluster):
        cluster = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert len(cluster) == 2 and set(nodes) == cluster, (nodes, cluster)
    reference_nodes = json.loads((reference.run_dir / "stats.json").read_text())["nodes"]
    assert set(reference_nodes) == {socket.gethostname()}
    assert sum(entry["parts"] for entry in nodes.values()) == sum(
        entry["parts"] for entry in reference_nodes.values()
    )
    assert all(entry["parts"] >= 2 for entry in nodes.values()), nodes

    assert run.summary == reference.summary
    assert _files(run.run_dir) == _files(reference.run_dir)
    assert any(entry["path"].startswith("shards/") for entry in _files(run.run_dir))


@contextlib.contextmanager
def _connected(address: str) -> Iterator[None]:
    import ray

    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
