"""`corpusmill serve`: build the settings from command-line values and run the app under uvicorn."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from corpusmill.service.settings import ServiceSettings, read_api_token

# Requests are answered by a thread pool while the event loop reads and writes sockets: with Python's default
# 5 ms, the loop waits up to that long for the GIL after each socket operation whenever a request thread is
# busy, which under many concurrent clients adds up to most of a request's latency. 1 ms cuts that wait.
SWITCH_INTERVAL_S = 0.001


def serve(
    *,
    ray_address: str | None = None,
    db: str | None = None,
    data_dir: Path = Path("service-data"),
    runs_dir: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    token_file: Path | None = None,
    num_cpus: int | None = None,
    job_python: str | None = None,
    ray_nice: int = 10,
) -> None:
    """Run the service until interrupted; SettingsError (no API token, unreadable token file) stops it first.

    `runs_dir` is a local directory or an object-storage URI (`s3://bucket/runs`), kept as given.
    """
    import uvicorn

    from corpusmill.service.app import create_app

    settings = ServiceSettings(
        data_dir=data_dir.resolve(),
        api_token=read_api_token(token_file),
        db_url=db,
        runs_dir=runs_dir.resolve() if isinstance(runs_dir, Path) else runs_dir,
        ray_address=ray_address,
        ray_num_cpus=num_cpus,
        ray_nice=ray_nice,
        job_python=job_python,
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("corpusmill").setLevel(logging.INFO)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
