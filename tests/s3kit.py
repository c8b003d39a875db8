"""A real S3 server on loopback for tests: moto's standalone server, reached over HTTP through s3fs.

corpusmill's code only ever sees `s3://bucket/key` URIs; what sends them to this server instead of AWS is the
environment, the same way a deployment points at MinIO or Ceph: `AWS_ENDPOINT_URL_S3` (the AWS SDKs'
per-service endpoint setting, which botocore, and through it s3fs, reads when a client is made) and the usual
`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`. Ray and Beam worker processes started after the variables are
set inherit them, so they reach the same server.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec

from corpusmill.core.environment import patched_environment

# Variables that would point a client elsewhere, or at another identity, if a developer's shell has them.
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Bucket:
    """A bucket on the test server: its name and the endpoint that serves it."""

    name: str
    endpoint: str

    def uri(self, key: str = "") -> str:
        return f"s3://{self.name}/{key.lstrip('/')}" if key else f"s3://{self.name}"

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The s3 filesystem corpusmill's own code gets (configured by the environment alone)."""
        return fsspec.filesystem("s3")

    def upload(self, local: Path, key: str) -> list[str]:
        """Copy every file under `local` to `key/` (its relative paths kept); the URIs written, sorted."""
        written = []
        for path in sorted(p for p in Path(local).rglob("*") if p.is_file()):
            target = f"{self.name}/{key.strip('/')}/{path.relative_to(local).as_posix()}"
            self.fs.put_file(str(path), target)
            written.append(f"s3://{target}")
        return written


def environment(endpoint: str, scratch: Path) -> dict[str, str]:
    """The variables that send s3fs (in this process and in every worker started after) to `endpoint`."""
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "corpusmill-test",
        "AWS_SECRET_ACCESS_KEY": "corpusmill-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        # No shared config or credentials file of the developer's (profiles, endpoints) takes part.
        "AWS_CONFIG_FILE": str(scratch / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "aws-credentials"),
    }


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


@contextlib.contextmanager
def moto_server(log: Path, timeout_s: float = 30.0) -> Iterator[str]:
    """Run `moto_server` on a free loopback port until the block ends; yields its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(endpoint):
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {process.returncode}: {log.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"moto_server did not answer on {endpoint} in {timeout_s}s: {log.read_text()}"
                )
            time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def serve_bucket(name: str, scratch: Path) -> Iterator[Bucket]:
    """A bucket on a fresh server, with the environment pointing at it for the block (restored after)."""
    import s3fs

    scratch.mkdir(parents=True, exist_ok=True)
    with (
        moto_server(scratch / "moto.log") as endpoint,
        patched_environment(environment(endpoint, scratch), cleared=_CLEARED),
    ):
        # Filesystem instances made before (or after) the block hold other settings; none is reused across it.
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            fsspec.filesystem("s3").mkdir(name)
            yield Bucket(name, endpoint)
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
