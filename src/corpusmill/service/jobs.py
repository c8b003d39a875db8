"""The Ray Jobs API as the service uses it: submit, look up, read logs, stop; one place that knows Ray's errors.

`JobSubmissionClient` reports every HTTP failure as a RuntimeError whose text carries the status code; this
wrapper turns "the cluster does not know this job" into `JobNotFound` (a run whose job vanished, for example
because the cluster was replaced, is failed with that reason) and leaves other errors (cluster unreachable)
as they are, so callers retry them. The client is created lazily: the service starts even while the cluster
is down, and connects when it first needs it.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass
from typing import Any

_STATUS_CODE = re.compile(r"status code (\d{3})")


class JobNotFound(LookupError):
    """The cluster has no job with this id."""


@dataclass(frozen=True)
class JobState:
    """What Ray says about one job."""

    status: str  # PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED
    message: str | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    exit_code: int | None


def _from_ms(value: int | None) -> dt.datetime | None:
    return None if not value else dt.datetime.fromtimestamp(value / 1000, dt.UTC).replace(microsecond=0)


def _not_found(exc: RuntimeError) -> bool:
    match = _STATUS_CODE.search(str(exc))
    return bool(match and match.group(1) == "404") or "does not exist" in str(exc)


class RayJobs:
    """A Ray cluster's Jobs API at `address` (its dashboard URL), authenticated with `token` when given."""

    def __init__(self, address: str, token: str | None = None) -> None:
        self.address = address
        self._token = token
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        """The JobSubmissionClient, connected on first use."""
        with self._lock:
            if self._client is None:
                from ray.job_submission import JobSubmissionClient

                headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
                self._client = JobSubmissionClient(self.address, headers=headers)
            return self._client

    def submit(self, job_id: str, entrypoint: str, metadata: dict[str, str]) -> None:
        """Submit `entrypoint` under our own id, so a restart can find the job again by it."""
        self.client().submit_job(entrypoint=entrypoint, submission_id=job_id, metadata=metadata)

    def info(self, job_id: str) -> JobState:
        """Status, message, times and exit code of a job; JobNotFound when the cluster does not know it."""
        try:
            details = self.client().get_job_info(job_id)
        except RuntimeError as exc:
            if _not_found(exc):
                raise JobNotFound(job_id) from None
            raise
        status = getattr(details.status, "value", details.status)
        return JobState(
            status=str(status),
            message=details.message,
            start_time=_from_ms(details.start_time),
            end_time=_from_ms(details.end_time),
            exit_code=getattr(details, "driver_exit_code", None),
        )

    def logs(self, job_id: str) -> str:
        """Everything the job's entrypoint printed (stdout and stderr)."""
        try:
            return self.client().get_job_logs(job_id)
        except RuntimeError as exc:
            if _not_found(exc):
                raise JobNotFound(job_id) from None
            raise

    def stop(self, job_id: str) -> bool:
        """Ask Ray to stop a job; False if it had already ended."""
        try:
            return bool(self.client().stop_job(job_id))
        except RuntimeError as exc:
            if _not_found(exc):
                raise JobNotFound(job_id) from None
            raise
