"""Helpers of the service tests: the test clock, a restartable service on real HTTP, waiting for runs, and the
pages alone over a real store (no Ray) for page tests."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from corpusmill.service.app import create_app
from corpusmill.service.body_limit import BodySizeLimit
from corpusmill.service.context import Services
from corpusmill.service.db import make_engine
from corpusmill.service.errors import install_error_handlers
from corpusmill.service.pages import router as pages_router
from corpusmill.service.runs import RunManager
from corpusmill.service.scheduler import Scheduler
from corpusmill.service.settings import ServiceSettings
from corpusmill.service.store import Store

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-5f1c2a9e8b7d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RUN_TIMEOUT_S = 300


class FakeClock:
    """The service's clock: wall time, until a test sets it to get cron ticks without waiting for them."""

    def __init__(self) -> None:
        self._now: dt.datetime | None = None
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now or dt.datetime.now(dt.UTC).replace(microsecond=0)

    def set(self, when: dt.datetime) -> None:
        with self._lock:
            self._now = when

    def release(self) -> None:
        """Back to wall time."""
        with self._lock:
            self._now = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceHandle:
    """A service app served by uvicorn on a thread, on real HTTP; restartable on the same database."""

    def __init__(self, settings: ServiceSettings, clock: Callable[[], dt.datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.starts = 0

    def start(self) -> ServiceHandle:
        app = create_app(self.settings, clock=self.clock)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, name="service-under-test", daemon=True)
        thread.start()
        deadline = time.monotonic() + 240
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the service did not start; see the log above")
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not start within 240 s")
            time.sleep(0.05)
        self._server, self._thread, self.url = server, thread, f"http://127.0.0.1:{port}"
        self.starts += 1
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(120)
            assert not self._thread.is_alive(), "the service did not shut down"
        self._server = self._thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call with the API token (unless headers are given)."""
        kwargs.setdefault("headers", AUTH)
        with self.client() as client:
            return client.request(method, path, **kwargs)

    def wait_for_run(
        self, run_id: int, until: Callable[[dict[str, Any]], bool], timeout_s: float = RUN_TIMEOUT_S
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.get(f"/api/runs/{run_id}").json()
            if until(run):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['status']} after {timeout_s:.0f} s: {run}")
            time.sleep(0.3)


def finished(run: dict[str, Any]) -> bool:
    return run["status"] in ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass
class FinishedRun:
    """The demo run, and what was seen of it on the way."""

    run: dict[str, Any]
    status_at_restart: str
    progress_at_restart: dict[str, Any] | None
    starts_before: int
    starts_after: int
    seen: list[str] = field(default_factory=list)

    @property
    def id(self) -> int:
        return self.run["id"]

    @property
    def run_dir(self) -> Path:
        return Path(self.run["run_dir"])


class RecordingJobs:
    """Stands in for the Jobs API: records what was submitted."""

    address = "http://ray.invalid:8265"

    def __init__(self) -> None:
        self.entrypoints: dict[str, str] = {}

    def submit(self, job_id: str, entrypoint: str, metadata: dict[str, str]) -> None:
        self.entrypoints[job_id] = entrypoint


@dataclass
class PagesApp:
    """The pages (and their actions) over a real SQLite store, without Ray: a fake Jobs API stands in for the
    cluster and the clock is fixed, so page tests run in milliseconds."""

    settings: ServiceSettings
    store: Store
    manager: RunManager
    scheduler: Scheduler
    app: FastAPI


def pages_app(
    tmp_path: Path,
    jobs: Any,
    now: dt.datetime,
    settings: ServiceSettings | None = None,
    api_errors: bool = False,
) -> PagesApp:
    """An app with the pages router; `api_errors` adds the service's size limit and error handlers too."""
    settings = settings or ServiceSettings(data_dir=tmp_path, api_token=TOKEN)
    store = Store(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    clock = lambda: now  # noqa: E731
    manager = RunManager(store, jobs, tmp_path / "runs", "python", clock)
    scheduler = Scheduler(store, manager, clock)
    app = FastAPI()
    app.state.settings = settings
    app.state.services = Services(settings, store, manager, scheduler, clock)
    if api_errors:
        install_error_handlers(app)
        app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes)
    app.include_router(pages_router)
    return PagesApp(settings, store, manager, scheduler, app)
