"""Background work on daemon threads: poll Ray jobs, fire due schedules.

Threads rather than asyncio tasks, because both jobs are blocking calls (HTTP to Ray, database writes) and a
thread keeps them off the event loop without wrapping every call. An exception is logged and the loop goes
on: one unreachable cluster or one bad row must not stop the service from following its other runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class PeriodicThread:
    """Calls `work` now and then every `interval_s` seconds until `stop()`."""

    def __init__(self, name: str, interval_s: float, work: Callable[[], object]) -> None:
        self.name = name
        self.interval_s = interval_s
        self.work = work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"corpusmill-{name}", daemon=True)

    def start(self) -> PeriodicThread:
        """Begin the loop."""
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            try:
                self.work()
            except Exception:
                logger.exception(
                    "the %s loop failed this round; it runs again in %.1f s", self.name, self.interval_s
                )
            if self._stop.wait(self.interval_s):
                return

    def stop(self, timeout_s: float = 30.0) -> None:
        """End the loop after the current round."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
