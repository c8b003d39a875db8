"""A schedule's notification hook: POST a small JSON to its `webhook_url` when one of its runs fails or
succeeds with warnings in its report.

The run manager calls the notifier for every run that ends; the notifier picks the runs worth telling about
and posts from a daemon thread with a short timeout, so a slow or dead receiver never holds up the poller,
and never changes the run. Deliveries that fail are logged and counted (`failed`), not retried: the run's
page and the API keep the full story, the hook only says there is something to look at.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

from corpusmill.service.artifacts import ArtifactMissing, read_mixture
from corpusmill.service.store import FAILED, SUCCEEDED, Run, Store

logger = logging.getLogger(__name__)

TIMEOUT_S = 5.0


def report_warnings(run: Run) -> list[str]:
    """The messages of the warnings in the run's report (report/mixture.json); none when it has no report."""
    try:
        found = read_mixture(run.run_dir or "").get("warnings") or []
    except (ArtifactMissing, OSError, ValueError, AttributeError):
        return []
    return [str(w.get("message", w)) if isinstance(w, dict) else str(w) for w in found]


def payload(run: Run, warnings: list[str]) -> dict[str, Any]:
    """What the hook receives."""
    return {
        "schedule_id": run.schedule_id,
        "run_id": run.id,
        "recipe": f"{run.recipe}:v{run.version}",
        "status": run.status,
        "warnings": warnings,
        "error": (run.error or "").split("\n", 1)[0] or None,
        "url": f"/runs/{run.id}",
    }


class WebhookNotifier:
    """Called with each ended run; notifies the run's schedule's hook when the run failed or has warnings."""

    def __init__(self, store: Store, timeout_s: float = TIMEOUT_S) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self.delivered = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __call__(self, run: Run) -> None:
        if run.schedule_id is None or run.status not in (FAILED, SUCCEEDED):
            return
        schedule = self.store.schedule(run.schedule_id)  # a deleted schedule notifies no one
        if schedule is None or not schedule.webhook_url:
            return
        warnings = report_warnings(run) if run.status == SUCCEEDED else []
        if run.status == SUCCEEDED and not warnings:
            return
        thread = threading.Thread(
            target=self._post,
            args=(schedule.webhook_url, payload(run, warnings)),
            name=f"corpusmill-webhook-{run.id}",
            daemon=True,
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _post(self, url: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json", "User-Agent": "corpusmill-service"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read(1024)
        except Exception as exc:
            with self._lock:
                self.failed += 1
            logger.warning(
                "schedule %s: webhook %s for run %s failed: %s", body["schedule_id"], url, body["run_id"], exc
            )
        else:
            with self._lock:
                self.delivered += 1
            logger.info(
                "schedule %s: webhook notified of run %s (%s)",
                body["schedule_id"],
                body["run_id"],
                body["status"],
            )

    def join(self, timeout_s: float = TIMEOUT_S + 1) -> None:
        """Wait for the deliveries in flight (tests, shutdown)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout_s)
