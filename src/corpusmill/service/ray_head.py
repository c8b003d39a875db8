"""A local Ray head with the Jobs API, started and stopped by the service when no cluster address is given.

`ray start --head --block` keeps every Ray process of the head (GCS, raylet, dashboard, workers) as descendants
of one process in its own session, so stopping it touches only what this object started: SIGTERM to that
process lets Ray drain and stop its children; anything left after the grace period is killed by process id.
`ray stop` is never used, since it stops every Ray instance on the machine, including other users' clusters.

The head gets a fresh random auth token (RAY_AUTH_MODE=token) in its environment only: jobs inherit it from the
raylet, and the service sends it as a bearer header, so nothing is written to ~/.ray/auth_token. Every port is
chosen free up front, because Ray's fixed defaults (client server 10001, agent 52365) collide when two heads
share a machine. The temp dir is short because Ray's unix socket paths must stay under ~107 bytes.

The head runs at a lower CPU priority than the service (`nice`, default 10; its workers inherit it): on a
machine that both builds a corpus and serves the pages, a rebuild uses every idle cycle but the pages and the
API stay quick while it runs. A rebuild on an otherwise idle machine is not slowed by it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

logger = logging.getLogger(__name__)

RAY = str(Path(sys.executable).with_name("ray"))


class RayHeadError(RuntimeError):
    """The local Ray head did not come up; the message carries the tail of its log."""


def _lower_priority(increment: int) -> Callable[[], None]:
    """What the child runs before `ray start`: lower its priority by `increment` (inherited by all it starts)."""

    def lower() -> None:
        os.nice(increment)

    return lower


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalRayHead:
    """One `ray start --head` owned by this process: `start()`, then `dashboard_url` and `token`, then `stop()`."""

    def __init__(self, num_cpus: int | None = None, temp_root: str | Path = "/tmp", nice: int = 0) -> None:
        self.num_cpus = num_cpus or os.cpu_count() or 1
        self.nice = nice
        self.temp_root = Path(temp_root)
        self.token = secrets.token_hex(32)
        self.dashboard_url = ""
        self.temp_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 180.0) -> LocalRayHead:
        """Start the head and wait until its Jobs API answers; raises RayHeadError with the log tail if not."""
        self.temp_dir = Path(tempfile.mkdtemp(prefix="cm-ray-", dir=self.temp_root))
        dashboard, agent_http, agent_grpc, client, metrics, runtime_env = _free_ports(6)
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH")}
        # No draining on SIGTERM: nothing on this head (no Serve replicas) needs time to move elsewhere.
        env.update(
            RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token, RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0"
        )
        command = [
            RAY,
            "start",
            "--head",
            "--port=0",
            f"--temp-dir={self.temp_dir}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            "--include-dashboard=true",
            f"--dashboard-agent-listen-port={agent_http}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--ray-client-server-port={client}",
            f"--metrics-export-port={metrics}",
            f"--runtime-env-agent-port={runtime_env}",
            f"--num-cpus={self.num_cpus}",
            "--disable-usage-stats",
            "--block",
        ]
        log = open(self.temp_dir / "ray-start.log", "wb")  # noqa: SIM115 - the child keeps writing to it
        self._process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_lower_priority(self.nice) if self.nice else None,
        )
        log.close()
        atexit.register(self.stop)
        self.dashboard_url = f"http://127.0.0.1:{dashboard}"
        logger.info("starting a local Ray head (%d CPUs) in %s", self.num_cpus, self.temp_dir)
        deadline = time.monotonic() + timeout_s
        headers = {"Authorization": f"Bearer {self.token}"}
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise RayHeadError(f"`ray start --head` exited with code {self._process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(f"{self.dashboard_url}/api/jobs/", headers=headers, timeout=2).status_code
                    == 200
                ):
                    logger.info("local Ray head ready at %s", self.dashboard_url)
                    return self
            time.sleep(0.5)
        tail = self.log_tail()
        self.stop()
        raise RayHeadError(f"the local Ray head did not answer within {timeout_s:.0f} s:\n{tail}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines `ray start` printed, for error messages."""
        if self.temp_dir is None:
            return ""
        try:
            text = (self.temp_dir / "ray-start.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def running(self) -> bool:
        """Whether the head's `ray start` process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self, grace_s: float = 45.0) -> None:
        """Stop the head and every process it started (and only those), then remove its temp dir."""
        process, self._process = self._process, None
        if process is not None:
            atexit.unregister(self.stop)
            descendants = _descendants(process.pid)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    logger.warning("the local Ray head did not stop within %.0f s; killing it", grace_s)
                    process.kill()
                    process.wait(timeout=30)
            for child in descendants:  # psutil checks the process identity, so a reused pid is never hit
                with contextlib.suppress(psutil.Error):
                    child.kill()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
