"""`--address`: the same run sent to a Ray cluster started with `ray start`, which outlives the run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from corpusmill.cli import app

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def ray_head() -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    started = subprocess.run(
        [
            RAY,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
        os.environ.pop("RAY_AUTH_MODE", None)


@pytest.mark.ray
def test_run_with_address_uses_the_cluster_and_leaves_it_running(ray_head: str, tmp_path: Path) -> None:
    os.environ.pop("RAY_AUTH_MODE", None)  # the engine must find the cluster token by itself
    texts = [
        f"Report number {i} describes how the harbour crews repaired the northern pier after the storm."
        for i in range(6)
    ]
    (tmp_path / "docs.jsonl").write_text(
        "".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: cluster\ninput:\n  paths: [docs.jsonl]\nstages:\n  - stage: dedup_exact\n  - stage: tokenize\n"
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(recipe), "--address", ray_head, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out / "documents").num_rows == 6
    # The cluster is not ours to stop: it still answers after the run. (Its status report comes from the
    # head's monitor, which publishes its first one a few seconds after `ray start`: a quick run can end
    # before it, so the report is awaited.)
    deadline = time.monotonic() + 60
    while True:
        status = subprocess.run(
            [RAY, "status", f"--address={ray_head}"],
            env={**os.environ, "RAY_AUTH_MODE": "token"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        if "No cluster status" not in status.stdout or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "Active" in status.stdout
