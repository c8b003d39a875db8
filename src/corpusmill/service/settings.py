"""Service settings: where metadata and run directories live, which Ray cluster runs the jobs, the API token.

One pydantic model holds every knob, so `corpusmill serve`, the app factory and the tests configure the service
the same way. The API token is a `SecretStr`: it never shows up in a repr, a log line or an error message.
Without a token the service refuses to start, because every mutating route needs one. The runs root is a
local directory, or an object-storage URI (`s3://bucket/runs`) that every Ray node and the service reach with
the credentials in their environment.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from corpusmill.core.location import RunPath, is_uri, run_path

TOKEN_ENV = "CORPUSMILL_API_TOKEN"


class SettingsError(ValueError):
    """The service cannot start with these settings; the message says what to set."""


class ServiceSettings(BaseModel):
    """Everything the service needs to know; paths are made absolute once, here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(
        description="Holds the SQLite database (by default) and, by default, the run directories."
    )
    api_token: SecretStr = Field(description="Bearer token required by every mutating API call.")
    db_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///DATA_DIR/service.db."
    )
    runs_dir: Path | str | None = Field(
        default=None,
        description="Where run directories go (default DATA_DIR/runs): a directory every Ray node sees, or an "
        "object-storage URI such as s3://bucket/runs.",
    )
    ray_address: str | None = Field(
        default=None, description="A Ray cluster's dashboard (Jobs API) URL; None starts a local Ray head."
    )
    ray_token: SecretStr | None = Field(
        default=None,
        description="Token of a token-authenticated cluster; default: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
        "~/.ray/auth_token, as Ray itself looks for it.",
    )
    ray_num_cpus: int | None = Field(default=None, gt=0, description="CPUs of the local Ray head.")
    ray_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="How much lower than the service's the local Ray head's CPU priority is (`nice`), so the "
        "pages stay quick while a rebuild runs on the same machine; 0 for the same priority.",
    )
    job_python: str | None = Field(
        default=None,
        description="Python that runs `corpusmill.cli` in a job (default: this interpreter for the local head, "
        "`python` on a cluster).",
    )
    poll_interval_s: float = Field(default=2.0, gt=0, description="How often running jobs are polled.")
    max_request_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest request body accepted (recipes are a few KB); a larger one is refused with 413.",
    )
    schedule_interval_s: float = Field(default=5.0, gt=0, description="How often due schedules are checked.")

    @field_validator("runs_dir", mode="before")
    @classmethod
    def _local_or_uri(cls, value: object) -> object:
        """A URI stays a string (a `Path` would turn `s3://b/x` into `s3:/b/x`); anything else is a `Path`."""
        if isinstance(value, str):
            return value.rstrip("/") if is_uri(value) else run_path(value)
        return value

    def database_url(self) -> str:
        """The SQLAlchemy URL actually used."""
        return self.db_url or f"sqlite:///{self.data_dir.resolve() / 'service.db'}"

    def runs_root(self) -> RunPath:
        """Where every run directory is created: an absolute local directory, or a URI as a `UPath`."""
        if isinstance(self.runs_dir, str):
            return run_path(self.runs_dir)
        return (self.runs_dir or self.data_dir / "runs").resolve()

    def jobs_share_this_disk(self) -> bool:
        """Whether jobs run on this machine (the service's own local Ray head), so a local path that does not
        exist here does not exist for them either."""
        return self.ray_address is None

    def python_for_jobs(self, local_head: bool) -> str:
        """The interpreter named in job entrypoints: workers of a cluster have their own `python`."""
        import sys

        return self.job_python or (sys.executable if local_head else "python")


def read_api_token(token_file: Path | None = None) -> SecretStr:
    """The API token from `--token-file` or CORPUSMILL_API_TOKEN, so it never has to appear on a command line."""
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"cannot read the API token file {token_file}: {exc.strerror or exc}"
            ) from exc
        if not token:
            raise SettingsError(f"the API token file {token_file} is empty; write the token into it")
        return SecretStr(token)
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise SettingsError(
            f"no API token: set {TOKEN_ENV} or pass --token-file FILE; every mutating call is checked against it"
        )
    return SecretStr(token)


def read_ray_token() -> str | None:
    """The token of a token-authenticated Ray cluster, from where Ray itself looks for it, or None."""
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if token:
        return token
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
