"""`corpusmill serve`: build the settings from command-line values and run the app under uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

from corpusmill.service.settings import ServiceSettings, read_api_token


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
        job_python=job_python,
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("corpusmill").setLevel(logging.INFO)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
