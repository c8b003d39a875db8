"""`serve()` as `corpusmill serve` runs it, in its own process: without a cluster address it starts its own
Ray head with a token-protected Jobs API at a lower CPU priority, and on Ctrl-C stops that head and every
process it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from servicekit import TOKEN

from corpusmill.service.settings import TOKEN_ENV

pytestmark = pytest.mark.ray

SERVE = (
    "import sys; from pathlib import Path; from corpusmill.service import serve; "
    "serve(data_dir=Path(sys.argv[1]), port=int(sys.argv[2]), num_cpus=1)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, Path]:
    port, log = _free_port(), tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(tmp_path / "data"), str(port)], env=env, stdout=out, stderr=out
        )
    return process, port, log


def test_without_a_token_the_service_does_not_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    process, _, log = _start(tmp_path, env)
    assert process.wait(timeout=120) != 0
    assert f"no API token: set {TOKEN_ENV}" in log.read_text()


def test_serve_starts_and_stops_its_own_ray_head(tmp_path: Path) -> None:
    process, port, log = _start(tmp_path, {**os.environ, TOKEN_ENV: TOKEN})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, log.read_text()
            try:
                health = httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        address = health.json()["ray"]
        assert address.startswith("http://127.0.0.1:")
        # A token-protected Jobs API: Ray refuses a client without the head's token.
        assert httpx.get(f"{address}/api/jobs/", timeout=10).status_code == 401
        (head,) = [
            p
            for p in psutil.Process(process.pid).children()
            if f"--dashboard-port={address.rsplit(':', 1)[1]}" in p.cmdline()
        ]
        started = [head, *head.children(recursive=True)]
        assert any(p.name() == "raylet" for p in started) and any(p.name() == "gcs_server" for p in started)
        # The head and everything it starts run at a lower priority than the service (default nice 10).
        service_nice = psutil.Process(process.pid).nice()
        assert {p.nice() - service_nice for p in started} == {10}
        assert (tmp_path / "data" / "service.db").is_file()
        assert TOKEN not in log.read_text()
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        returncode = process.wait(timeout=120)
    assert returncode == 0, log.read_text()
    _, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, [p.cmdline()[:2] for p in alive]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{address}/api/jobs/", timeout=5)
